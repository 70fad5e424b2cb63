"""The deployment files of example_project/deploy/ (docs/deployment.md), checked offline.

- docker-compose.yml against the Compose Specification's JSON schema: the copy that
  check-jsonschema ships (``check_jsonschema/builtin_schemas/vendor/compose-spec.json``,
  Apache-2.0, its licence beside it in that package), nothing fetched;
- the Kubernetes manifests against Kubernetes 1.37's schemas, strict (an unknown field
  fails), from kubernetes-validate;
- KEDA's ScaledObject and TriggerAuthentication, custom resources that Kubernetes'
  schemas do not know, by explicit checks of the fields that matter here;
- and that the files agree with the rest of the repository: the commands and images of
  docs/deployment.md (the celery commands being those of the README and
  docs/celery.md), the queues of ``django_async_reports.routing``, the environment
  variables of ``example_project/config/settings.py``, and the health endpoint;
- the static files: the image turns WhiteNoise on and runs ``collectstatic``, and the
  example project, with the same variable, collects them for real into a temporary
  folder and serves one through its WSGI application.

No Docker, no cluster and no network: file checks, and the example project's settings
in a subprocess for the static files.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from importlib import resources

import jsonschema
import kubernetes_validate
import pytest
from django.test import override_settings

from django_async_reports import routing
from tests import deploy_files as files

KUBERNETES_VERSION = "1.37"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}

# Variables the app's processes get that config/settings.py does not read, and who does.
READ_BY_OTHER_PROGRAMS = {
    "AWS_ACCESS_KEY_ID": "boto3, under django-storages",
    "AWS_SECRET_ACCESS_KEY": "boto3, under django-storages",
    "FLOWER_BASIC_AUTH": "Flower",
    "FLOWER_BROKER_API": "Flower",
    "DJANGO_SETTINGS_MODULE": "Django and Celery (manage.py, config/celery.py)",
    "PYTHONDONTWRITEBYTECODE": "Python",
    "PYTHONUNBUFFERED": "Python",
    "PIP_NO_CACHE_DIR": "pip, at build time",
    "PIP_DISABLE_PIP_VERSION_CHECK": "pip, at build time",
}
# Options the deployment adds to the commands the README and docs/celery.md show.
DEPLOYMENT_OPTIONS = {"--concurrency", "--loglevel"}


def _compose_schema() -> dict:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


def _compose_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(_compose_schema())
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def _app_image() -> str:
    (image,) = {service["image"] for service in files.compose()["services"].values()} & {
        c["image"] for _, doc in files.manifests() for c in files.containers(doc)
    }
    return image


def _app_services() -> dict[str, dict]:
    return {
        name: service
        for name, service in files.compose()["services"].items()
        if service["image"] == _app_image()
    }


def _app_containers() -> list[dict]:
    return [c for _, doc in files.manifests() for c in files.containers(doc)]


def _deployment(command_word: str, queues: str | None = None) -> dict:
    """The Deployment whose container runs ``celery ... <command_word>`` (on ``queues``)."""
    (found,) = [
        doc
        for doc in files.objects("Deployment")
        for c in files.containers(doc)
        if c["command"][3:4] == [command_word]
        and (queues is None or list(files.option_values(c["command"], "-Q")) == [queues])
    ]
    return found


def _report_queues() -> list[str]:
    """The queue names the package declares with its defaults, which the example keeps."""
    with override_settings(ASYNC_REPORTS={}):
        return [queue.name for queue in routing.report_queues()]


# -- Schemas --------------------------------------------------------------------------


def test_the_compose_file_matches_the_compose_specification():
    assert _compose_errors(files.compose_raw()) == []
    assert _compose_errors(files.compose()) == []


def test_the_compose_schema_check_catches_a_misspelt_field():
    broken = copy.deepcopy(files.compose())
    broken["services"]["web"]["healthchek"] = broken["services"]["web"].pop("healthcheck")
    assert any("healthchek" in error for error in _compose_errors(broken))


@pytest.mark.parametrize(
    ("filename", "document"),
    [(name, doc) for name, doc in files.manifests() if doc["kind"] not in KEDA_KINDS],
    ids=lambda value: value if isinstance(value, str) else value["kind"],
)
def test_each_kubernetes_manifest_matches_the_kubernetes_schemas(filename, document):
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_schema_check_catches_a_misspelt_field():
    beat = copy.deepcopy(_deployment("beat"))
    beat["spec"]["replica"] = beat["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(beat, KUBERNETES_VERSION, strict=True)


def test_keda_objects_scale_the_worker_on_the_report_queues():
    # KEDA's CRDs are in no Kubernetes schema: the fields that matter, checked by hand.
    (scaled,) = files.objects("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    worker = _deployment("worker", ",".join(_report_queues()))
    target = scaled["spec"]["scaleTargetRef"]
    assert (target.get("kind", "Deployment"), target["name"]) == (
        "Deployment",
        worker["metadata"]["name"],
    )
    assert "replicas" not in worker["spec"], "the HPA that KEDA creates owns the count"
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]

    authentications = {
        obj["metadata"]["name"]: obj for obj in files.objects("TriggerAuthentication")
    }
    secrets = {obj["metadata"]["name"]: obj for obj in files.objects("Secret")}
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"rabbitmq"}
    assert sorted(t["metadata"]["queueName"] for t in triggers) == sorted(_report_queues())
    for trigger in triggers:
        metadata = trigger["metadata"]
        assert metadata["mode"] == "QueueLength" and int(metadata["value"]) >= 1
        # http (the management API) counts running reports' unacknowledged messages too.
        assert metadata["protocol"] == "http"
        authentication = authentications[trigger["authenticationRef"]["name"]]
        assert authentication["apiVersion"] == "keda.sh/v1alpha1"
        for ref in authentication["spec"]["secretTargetRef"]:
            assert ref["key"] in secrets[ref["name"]]["stringData"]


# -- Agreement with the docs, the package and the example project ----------------------


def test_compose_runs_every_documented_command_and_no_other():
    commands = sorted(service["command"] for service in _app_services().values())
    assert commands == sorted(files.documented_commands())


def test_kubernetes_runs_the_documented_commands_but_flower():
    documented = [c for c in files.documented_commands() if c[3:4] != ["flower"]]
    assert sorted(c["command"] for c in _app_containers()) == sorted(documented)


def test_the_image_starts_the_documented_web_server_by_default():
    assert files.dockerfile_cmd() in files.documented_commands()
    assert files.dockerfile_cmd()[0] == "gunicorn"


def test_the_celery_commands_are_the_ones_the_readme_and_celery_docs_show():
    references = files.reference_celery_commands()
    for command in files.documented_commands():
        if command[0] != "celery":
            continue
        words = list(command)
        for option in DEPLOYMENT_OPTIONS & set(words):
            index = words.index(option)
            del words[index : index + 2]
        assert tuple(w if w != "config" else "proj" for w in words) in references, command


def test_images_are_the_documented_ones():
    compose_images = {service["image"] for service in files.compose()["services"].values()}
    assert compose_images == files.documented_images()
    assert {c["image"] for c in _app_containers()} == {_app_image()}
    assert _app_image().endswith(f":{files.package_version()}"), "tag it with the version"


def test_the_image_installs_extras_that_exist():
    assert files.dockerfile_extras() <= files.package_extras()


def test_workers_consume_queues_of_the_package_routing():
    queues = _report_queues()
    assert not {"QUEUE", "HIGH_PRIORITY_QUEUE"} & files.example_report_settings_keys(), (
        "the example project keeps the package's queue names"
    )
    commands = [s["command"] for s in _app_services().values()]
    commands += [c["command"] for c in _app_containers()] + files.documented_commands()
    consumed = [value for command in commands for value in files.option_values(command, "-Q")]
    assert consumed and all(set(value.split(",")) <= set(queues) for value in consumed)
    # One worker on every report queue, one on the urgent queue only (docs/celery.md).
    assert set(consumed) == {",".join(queues), queues[1]}


def test_app_processes_get_only_variables_that_something_reads():
    readable = files.variables_read_by_settings() | set(READ_BY_OTHER_PROGRAMS)
    given = files.dockerfile_environment()
    for service in _app_services().values():
        given |= set(service["environment"])
    for container in _app_containers():
        given |= files.container_environment(container)
    assert given - readable == set()


@pytest.mark.parametrize("where", ["compose", "kubernetes"])
def test_every_process_uses_the_real_services(where):
    # Without these the example project falls back to files under EXAMPLE_VAR_DIR,
    # which the processes of a deployment do not share.
    needed = {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "REPORTS_S3_BUCKET"}
    if where == "compose":
        environments = [set(s["environment"]) for s in _app_services().values()]
    else:
        environments = [files.container_environment(c) for c in _app_containers()]
    assert all(needed <= environment for environment in environments)


def test_secrets_are_placeholders():
    for secret in files.objects("Secret"):
        assert "data" not in secret
        assert all("change-me" in value for value in secret["stringData"].values())
    defaults = [
        value
        for service in files.compose()["services"].values()
        for name, value in (service.get("environment") or {}).items()
        if any(word in name for word in ("PASSWORD", "SECRET", "AUTH"))
    ]
    assert defaults and all("change-me" in value for value in defaults)


def test_beat_runs_exactly_once():
    (beat_service,) = [s for s in _app_services().values() if s["command"][3:4] == ["beat"]]
    assert beat_service["deploy"]["replicas"] == 1
    beat = _deployment("beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}


def test_workers_stop_after_their_running_reports_at_most():
    # Celery's warm shutdown waits for running tasks: give it the example's hard limit.
    hard_limit = files.example_report_setting("SOFT_TIME_LIMIT") + 60  # TIME_LIMIT unset
    for name in ("worker", "urgent-worker"):
        grace = files.compose()["services"][name]["stop_grace_period"]
        assert grace.endswith("s") and int(grace[:-1]) >= hard_limit
    for deployment in files.objects("Deployment"):
        if files.containers(deployment)[0]["command"][3:4] == ["worker"]:
            assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= (
                hard_limit
            )


def test_web_is_probed_on_the_health_endpoint():
    url = files.example_health_url()
    assert f"`{url}`" in (files.ROOT / "docs" / "operations.md").read_text()
    (web,) = [
        doc for doc in files.objects("Deployment") if doc["metadata"]["name"] == "reports-web"
    ]
    probe = files.containers(web)[0]["readinessProbe"]["httpGet"]
    assert probe["path"] == url
    (host,) = [h["value"] for h in probe["httpHeaders"] if h["name"] == "Host"]
    (config,) = files.objects("ConfigMap")
    assert host in config["data"]["DJANGO_ALLOWED_HOSTS"].split(",")
    healthcheck = " ".join(files.compose()["services"]["web"]["healthcheck"]["test"])
    assert f"http://localhost:8000{url}" in healthcheck
    assert "localhost" in files.compose()["services"]["web"]["environment"]["DJANGO_ALLOWED_HOSTS"]


def test_compose_waits_for_what_it_depends_on():
    services = files.compose()["services"]
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}'s health"
            else:
                assert rule["condition"] == "service_completed_successfully"
                assert services[target]["restart"] == "no", f"{target} is a one-shot"
    # The processes that use the database and the bucket start once both are ready.
    for name in ("web", "worker", "urgent-worker", "beat"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["bucket"]["condition"] == "service_completed_successfully"
        assert {"postgres", "rabbitmq", "redis"} <= set(depends_on)


# -- Static files ----------------------------------------------------------------------

STATIC_VARIABLE = "DJANGO_SERVE_STATIC"
# Variables that would point the example project at services, or override its defaults.
_SERVICE_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL")


def test_the_image_collects_and_serves_the_static_files():
    dockerfile = files.DOCKERFILE.read_text()
    assert STATIC_VARIABLE in files.dockerfile_environment()
    assert STATIC_VARIABLE in files.variables_read_by_settings()
    # collectstatic runs in the image, as the user the processes run as (it owns the files).
    user = dockerfile.index("\nUSER 10001:10001\n")
    collect = dockerfile.index("\nRUN python manage.py collectstatic --noinput\n")
    assert user < collect
    # ...and after the ENV that turns WhiteNoise (and its storage) on.
    assert dockerfile.index(f"{STATIC_VARIABLE}=1") < collect


def _example_extra_has(distribution: str) -> bool:
    text = (files.ROOT / "pyproject.toml").read_text()
    section = text.split("\nexample = [\n", 1)[1].split("\n]", 1)[0]
    return bool(re.search(rf'^\s*"{distribution}>=[0-9.]+",$', section, re.MULTILINE))


def test_whitenoise_is_in_the_example_extra_with_a_lower_bound():
    assert "example" in files.dockerfile_extras()
    assert _example_extra_has("whitenoise")


# Run in the example project's folder with its settings: collectstatic into
# EXAMPLE_VAR_DIR/static, then one GET through config.wsgi.application, as gunicorn
# calls it. Prints what the test checks as JSON.
_SERVE_ONE_FILE = r"""
import io, json, sys
from wsgiref.util import setup_testing_defaults
from django.core.management import call_command
import django
django.setup()
from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
if settings.SERVE_STATIC:
    call_command("collectstatic", "--noinput", verbosity=0)
    url = staticfiles_storage.url("django_async_reports/pages/my_reports.css")
else:
    url = settings.STATIC_URL + "django_async_reports/pages/my_reports.css"
from config.wsgi import application
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/" + url.lstrip("/"), "HTTP_HOST": "localhost"}
setup_testing_defaults(environ)
answer = {}
def start_response(status, headers, exc_info=None):
    answer.update(status=status, headers=dict(headers))
body = b"".join(application(environ, start_response))
answer.update(url=url, body=body.decode("utf-8", "replace"), static_root=settings.STATIC_ROOT)
print(json.dumps(answer))
"""


def _serve_static_file(tmp_path, **variables: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in _SERVICE_VARIABLES}
    env = {k: v for k, v in env.items() if not k.startswith(("DJANGO_", "EXAMPLE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        EXAMPLE_VAR_DIR=str(tmp_path),
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="localhost",
        PYTHONPATH=os.pathsep.join(filter(None, [str(files.ROOT), env.get("PYTHONPATH")])),
        **variables,
    )
    process = subprocess.run(
        [sys.executable, "-c", _SERVE_ONE_FILE],
        cwd=files.ROOT / "example_project",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_the_example_project_serves_collected_static_files_with_the_variable(tmp_path):
    source = files.ROOT / "django_async_reports" / "static" / "django_async_reports" / "pages"
    expected = (source / "my_reports.css").read_text()

    answer = _serve_static_file(tmp_path, **{STATIC_VARIABLE: "1"})

    assert answer["static_root"] == str(tmp_path / "static")
    # The manifest storage names the file by its content's hash, cached for a year.
    assert re.fullmatch(
        r"/static/django_async_reports/pages/my_reports\.[0-9a-f]{12}\.css", answer["url"]
    ), answer["url"]
    assert answer["status"] == "200 OK", answer
    assert answer["body"] == expected
    assert answer["headers"]["Content-Type"].startswith("text/css")
    assert "max-age=315360000" in answer["headers"]["Cache-Control"]
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    assert (tmp_path / "static" / "admin" / "css" / "base.css").is_file()


def test_without_the_variable_the_web_process_serves_no_static_files(tmp_path):
    answer = _serve_static_file(tmp_path)
    assert answer["status"].startswith("404"), answer["status"]
