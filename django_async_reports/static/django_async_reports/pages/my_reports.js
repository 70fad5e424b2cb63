/* The "My reports" page of django-async-reports: no build step, no dependency.
 *
 * It drives the reports API with the browser's session: POST / to request a
 * report (the server's field errors are shown at the fields), GET / for the
 * list, GET /<id>/progress/ every PAGE_POLL_SECONDS for each active report,
 * POST /<id>/cancel/ and /<id>/regenerate/. The template's elements are found
 * by their data-ar-* attributes, so an overriding template keeps them.
 */
(function () {
  "use strict";

  var configElement = document.getElementById("ar-page-config");
  if (!configElement) return;
  var config = JSON.parse(configElement.textContent);
  var strings = config.strings || {};
  var form = document.querySelector("[data-ar-request-form]");
  var list = document.querySelector("[data-ar-report-list]");
  var template = document.getElementById("ar-report-template");
  var announcer = document.getElementById("ar-announcer");
  var listError = document.querySelector("[data-ar-list-error]");
  var emptyNote = document.querySelector("[data-ar-empty]");
  var moreButton = document.querySelector("[data-ar-more]");
  var ACTIVE = ["pending", "processing"];
  var cards = {}; // report id -> {element, report, timer, failures}
  var nextPage = null;

  // -- helpers ---------------------------------------------------------------
  function text(key, values) {
    var message = strings[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      message = message.split("{" + name + "}").join(String(values[name]));
    });
    return message;
  }

  function announce(message) {
    // Cleared first, so that the same words twice are read twice.
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = message; }, 50);
  }

  function csrfToken() {
    var input = document.querySelector("[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function api(url, options) {
    options = options || {};
    var headers = { Accept: "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if ((options.method || "GET") !== "GET") headers["X-CSRFToken"] = csrfToken();
    return fetch(url, {
      method: options.method || "GET",
      credentials: "same-origin",
      headers: headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body)
    }).then(function (response) {
      return response.text().then(function (body) {
        var data = null;
        try { data = body ? JSON.parse(body) : null; } catch (error) { data = null; }
        return { status: response.status, ok: response.ok, data: data };
      });
    });
  }

  function firstMessage(value) {
    if (value == null) return "";
    if (typeof value === "string") return value;
    if (Array.isArray(value)) return value.map(firstMessage).filter(Boolean).join(" ");
    if (typeof value === "object") {
      return Object.keys(value).map(function (key) { return firstMessage(value[key]); })
        .filter(Boolean).join(" ");
    }
    return String(value);
  }

  function errorText(result) {
    var data = result.data || {};
    return firstMessage(data.detail || data.message || data.non_field_errors) ||
      firstMessage(data) || text("serverError", { status: result.status });
  }

  function number(value) {
    return Number(value).toLocaleString();
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return text("seconds", { n: seconds });
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return text("minutes", { n: minutes, s: seconds % 60 });
    return text("hours", { n: Math.floor(minutes / 60), m: minutes % 60 });
  }

  function localTime(value) {
    if (!value) return "";
    var date = new Date(value);
    return isNaN(date.getTime()) ? value : date.toLocaleString();
  }

  // -- the request form ------------------------------------------------------
  function selectedType() {
    return form.querySelector("[data-ar-type-select]").value;
  }

  function showParameters(reportType) {
    form.querySelectorAll("[data-ar-parameters]").forEach(function (fieldset) {
      var shown = fieldset.getAttribute("data-ar-parameters") === reportType;
      fieldset.hidden = !shown;
      fieldset.disabled = !shown;
    });
    var formatSelect = form.querySelector("[data-ar-format-select]");
    var type = config.types[reportType] || { formats: [], defaultFormat: "" };
    formatSelect.innerHTML = "";
    type.formats.forEach(function (format) {
      var option = document.createElement("option");
      option.value = format;
      option.textContent = format.toUpperCase();
      option.selected = format === type.defaultFormat;
      formatSelect.appendChild(option);
    });
    clearErrors();
  }

  function clearErrors() {
    form.querySelectorAll("[data-ar-error-for]").forEach(function (element) {
      element.hidden = true;
      element.textContent = "";
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (element) {
      element.removeAttribute("aria-invalid");
    });
    var formError = form.querySelector("[data-ar-form-error]");
    formError.hidden = true;
    formError.textContent = "";
  }

  function fieldError(name, message) {
    // name: "format", or "parameters.start_date" for a field of the type's fieldset.
    var scope = form;
    if (name.indexOf("parameters.") === 0) {
      scope = form.querySelector('[data-ar-parameters="' + selectedType() + '"]');
    }
    var element = scope && scope.querySelector('[data-ar-error-for="' + name + '"]');
    if (!element) return false;
    element.textContent = message;
    element.hidden = false;
    var input = element.parentNode.querySelector("input, select, textarea");
    if (input) input.setAttribute("aria-invalid", "true");
    return true;
  }

  function showErrors(errors) {
    // A 400's body: {"field": [...], "parameters": {"name": [...]} or [...]}.
    var unplaced = [];
    Object.keys(errors || {}).forEach(function (key) {
      var value = errors[key];
      if (key === "parameters" && value && !Array.isArray(value) && typeof value === "object") {
        Object.keys(value).forEach(function (name) {
          if (!fieldError("parameters." + name, firstMessage(value[name]))) {
            unplaced.push(firstMessage(value[name]));
          }
        });
      } else if (!fieldError(key, firstMessage(value))) {
        unplaced.push(firstMessage(value));
      }
    });
    var formError = form.querySelector("[data-ar-form-error]");
    formError.textContent = [text("fixErrors")].concat(unplaced).join(" ");
    formError.hidden = false;
    var invalid = form.querySelector('[aria-invalid="true"]');
    (invalid || formError).focus();
  }

  function readParameters(fieldset) {
    var parameters = {};
    var errors = {};
    fieldset.querySelectorAll("[data-ar-field]").forEach(function (wrapper) {
      var name = wrapper.getAttribute("data-ar-field");
      var kind = wrapper.getAttribute("data-ar-kind");
      var widget = wrapper.getAttribute("data-ar-widget");
      if (widget === "checkbox") {
        parameters[name] = wrapper.querySelector("input").checked;
        return;
      }
      if (widget === "checkboxes") {
        var checked = wrapper.querySelectorAll("input:checked");
        if (checked.length) {
          parameters[name] = Array.prototype.map.call(checked, function (i) { return i.value; });
        }
        return;
      }
      var raw = wrapper.querySelector("input, select, textarea").value.trim();
      if (raw === "") return; // left out: the server applies the default or says it is required
      if (kind === "integer" || kind === "number") {
        var value = Number(raw);
        parameters[name] = isNaN(value) ? raw : value; // the server explains a bad number
      } else if (kind === "json") {
        try { parameters[name] = JSON.parse(raw); } catch (error) { errors[name] = text("invalidJson"); }
      } else {
        parameters[name] = raw;
      }
    });
    return { parameters: parameters, errors: errors };
  }

  function submitRequest(event) {
    event.preventDefault();
    clearErrors();
    var reportType = selectedType();
    var fieldset = form.querySelector('[data-ar-parameters="' + reportType + '"]');
    var read = readParameters(fieldset);
    if (Object.keys(read.errors).length) {
      showErrors({ parameters: read.errors });
      return;
    }
    var body = {
      report_type: reportType,
      parameters: read.parameters,
      format: form.querySelector("[data-ar-format-select]").value,
      title: form.querySelector("[name=title]").value.trim(),
      compress: form.querySelector("[name=compress]").checked
    };
    var priority = form.querySelector("[name=priority]");
    if (priority) body.priority = priority.value;
    var sendEmail = form.querySelector("[name=send_email]");
    if (sendEmail) body.send_email = sendEmail.checked;
    var button = form.querySelector("[data-ar-submit]");
    button.disabled = true;
    api(config.reportsUrl, { method: "POST", body: body }).then(function (result) {
      if (result.status === 400) {
        showErrors(result.data);
      } else if (!result.ok) {
        var formError = form.querySelector("[data-ar-form-error]");
        formError.textContent = errorText(result);
        formError.hidden = false;
      } else {
        var report = result.data;
        var outcome = report.outcome === "reused" || report.outcome === "joined" ? report.outcome : "requested";
        announce(text(outcome, { title: report.title || report.report_type_label }));
        showReport(report, true);
        // The parameters stay for the next request; a title names one report.
        form.querySelector("[name=title]").value = "";
      }
    }).catch(function () {
      var formError = form.querySelector("[data-ar-form-error]");
      formError.textContent = text("networkError");
      formError.hidden = false;
    }).then(function () { button.disabled = false; });
  }

  // -- the list of reports ---------------------------------------------------
  function slot(element, name) {
    return element.querySelector('[data-ar-slot="' + name + '"]');
  }

  function showReport(report, atTop) {
    var card = cards[report.id];
    if (!card) {
      var element = template.content.firstElementChild.cloneNode(true);
      element.setAttribute("data-ar-report", report.id);
      element.querySelector("[data-ar-cancel]").addEventListener("click", function () { cancel(report.id); });
      element.querySelector("[data-ar-regenerate]").addEventListener("click", function () { regenerate(report.id); });
      card = cards[report.id] = { element: element, report: report, timer: null, failures: 0, rates: null };
      if (atTop) list.insertBefore(element, list.firstChild); else list.appendChild(element);
    }
    card.report = report;
    render(card);
    emptyNote.hidden = true;
    if (ACTIVE.indexOf(report.status) >= 0) schedulePoll(card, 0);
  }

  function render(card) {
    var report = card.report;
    var element = card.element;
    var active = ACTIVE.indexOf(report.status) >= 0;
    slot(element, "title").textContent = report.title || report.report_type_label;
    var status = slot(element, "status");
    status.textContent = (config.statusLabels || {})[report.status] || report.status;
    status.className = "ar-status ar-status--" + report.status;
    slot(element, "type").textContent = report.report_type_label;
    slot(element, "format").textContent = report.format.toUpperCase() + (report.compress ? " (gzip)" : "");
    var created = slot(element, "created");
    created.textContent = localTime(report.created_at);
    created.setAttribute("datetime", report.created_at);

    var progressBox = element.querySelector("[data-ar-progress]");
    progressBox.hidden = !active;
    if (active) {
      var percent = Math.max(0, Math.min(100, report.progress || 0));
      var bar = element.querySelector("[data-ar-bar]");
      element.querySelector("[data-ar-fill]").style.width = percent + "%";
      bar.setAttribute("aria-valuenow", String(percent));
      var words = progressWords(report, card.rates);
      bar.setAttribute("aria-valuetext", percent + "% " + words);
      bar.setAttribute("aria-label", text("progressOf", { title: report.title || report.report_type_label }));
      slot(element, "progress").textContent = percent + "% · " + words;
    }

    var detail = slot(element, "detail");
    var detailText = "";
    if (report.status === "failed") detailText = report.error_message || "";
    else if (report.status === "completed" && report.expired) detailText = text("expired");
    else if (report.status === "completed" && card.rates && card.rates.rows != null) {
      detailText = text("done", { rows: number(card.rates.rows) });
    }
    detail.textContent = detailText;
    detail.hidden = !detailText;

    var download = element.querySelector("[data-ar-download]");
    download.hidden = !report.download_url;
    if (report.download_url) {
      download.href = report.download_url;
      download.setAttribute("aria-label", text("downloadOf", { title: report.title || report.report_type_label }));
    }
    var cancelButton = element.querySelector("[data-ar-cancel]");
    cancelButton.hidden = !active;
    cancelButton.setAttribute("aria-label", text("cancelOf", { title: report.title || report.report_type_label }));
    var regenerateButton = element.querySelector("[data-ar-regenerate]");
    regenerateButton.hidden = active;
    regenerateButton.setAttribute("aria-label", text("regenerateOf", { title: report.title || report.report_type_label }));
  }

  function progressWords(report, rates) {
    if (report.status === "pending") return report.progress_message || text("waiting");
    var parts = [];
    if (rates && rates.rows != null) {
      parts.push(rates.total != null
        ? text("rowsOf", { rows: number(rates.rows), total: number(rates.total) })
        : text("rows", { rows: number(rates.rows) }));
    }
    if (rates && rates.rows_per_second != null) {
      parts.push(text("rate", { rate: number(Math.round(rates.rows_per_second)) }));
    }
    if (rates && rates.eta_seconds != null) parts.push(text("eta", { time: duration(rates.eta_seconds) }));
    if (!parts.length) parts.push(report.progress_message || "");
    return parts.join(" · ");
  }

  // -- polling ---------------------------------------------------------------
  function pollDelay(card) {
    var seconds = config.pollSeconds || 1;
    // Many reports at once: about five polls per interval in all, not one per report.
    var active = Object.keys(cards).filter(function (id) {
      return ACTIVE.indexOf(cards[id].report.status) >= 0;
    }).length;
    seconds *= Math.max(1, active / 5);
    if (document.hidden) seconds *= 10;
    // After failures, back off up to 30 s: a restarting server is not hammered.
    return Math.min(30, seconds * Math.pow(2, Math.min(card.failures, 5))) * 1000;
  }

  function schedulePoll(card, delay) {
    if (card.timer !== null) return;
    card.timer = window.setTimeout(function () { poll(card); }, delay === undefined ? pollDelay(card) : delay);
  }

  function poll(card) {
    card.timer = null;
    api(card.report.progress_url).then(function (result) {
      if (!result.ok) throw new Error(String(result.status));
      card.failures = 0;
      listError.hidden = true;
      var data = result.data;
      card.rates = data;
      if (ACTIVE.indexOf(data.status) >= 0) {
        card.report.status = data.status;
        card.report.progress = data.progress;
        card.report.progress_message = data.message;
        render(card);
        schedulePoll(card);
      } else {
        // Finished: the detail has the download link or the error.
        return api(detailUrl(card.report.id)).then(function (detail) {
          if (!detail.ok) throw new Error(String(detail.status));
          card.report = detail.data;
          render(card);
          announce(text(detail.data.status, { title: detail.data.title || detail.data.report_type_label }));
        });
      }
    }).catch(function () {
      card.failures += 1;
      listError.textContent = text("networkError");
      listError.hidden = false;
      schedulePoll(card);
    });
  }

  function loadReports(url) {
    list.setAttribute("aria-busy", "true");
    return api(url).then(function (result) {
      if (!result.ok) throw new Error(errorText(result));
      var page = result.data;
      var reports = Array.isArray(page) ? page : page.results;
      reports.forEach(function (report) { showReport(report, false); });
      nextPage = Array.isArray(page) ? null : page.next;
      moreButton.hidden = !nextPage;
      emptyNote.hidden = Object.keys(cards).length > 0;
      listError.hidden = true;
    }).catch(function (error) {
      listError.textContent = error.message || text("networkError");
      listError.hidden = false;
    }).then(function () { list.setAttribute("aria-busy", "false"); });
  }

  function refresh() {
    Object.keys(cards).forEach(function (id) {
      var card = cards[id];
      if (card.timer !== null) window.clearTimeout(card.timer);
      card.element.remove();
    });
    cards = {};
    loadReports(config.reportsUrl + "?page_size=" + config.pageSize);
  }

  // -- actions ---------------------------------------------------------------
  function detailUrl(id) { return config.reportsUrl + id + "/"; }

  function cancel(id) {
    var card = cards[id];
    api(detailUrl(id) + "cancel/", { method: "POST", body: {} }).then(function (result) {
      if (result.ok || result.status === 409) {
        // 409: it finished meanwhile; either way the detail says what it is now.
        if (card.timer !== null) { window.clearTimeout(card.timer); card.timer = null; }
        return api(detailUrl(id)).then(function (detail) {
          if (detail.ok) { card.report = detail.data; render(card); }
          announce(result.ok ? text("cancelled") : errorText(result));
        });
      }
      announce(errorText(result));
    }).catch(function () { announce(text("networkError")); });
  }

  function regenerate(id) {
    api(detailUrl(id) + "regenerate/", { method: "POST", body: {} }).then(function (result) {
      if (result.ok) {
        showReport(result.data, true);
        announce(text("requested", { title: result.data.title || result.data.report_type_label }));
        cards[result.data.id].element.querySelector("[data-ar-cancel]").focus();
      } else {
        announce(errorText(result));
        var card = cards[id];
        var detail = slot(card.element, "detail");
        detail.textContent = errorText(result);
        detail.hidden = false;
      }
    }).catch(function () { announce(text("networkError")); });
  }

  // -- start -------------------------------------------------------------------
  if (form) {
    var typeSelect = form.querySelector("[data-ar-type-select]");
    typeSelect.addEventListener("change", function () { showParameters(typeSelect.value); });
    showParameters(typeSelect.value);
    form.addEventListener("submit", submitRequest);
  }
  document.querySelector("[data-ar-refresh]").addEventListener("click", refresh);
  moreButton.addEventListener("click", function () { if (nextPage) loadReports(nextPage); });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) return;
    // Back in view: poll the active reports now rather than at the slow pace.
    Object.keys(cards).forEach(function (id) {
      var card = cards[id];
      if (card.timer !== null && ACTIVE.indexOf(card.report.status) >= 0) {
        window.clearTimeout(card.timer);
        card.timer = null;
        schedulePoll(card, 0);
      }
    });
  });
  loadReports(config.reportsUrl + "?page_size=" + config.pageSize);
})();
