"""The REST API: the reports and schedules viewsets that ``django_async_reports.urls`` routes.

* :mod:`.base`: what every viewset shares (settings-driven access, pagination,
  domain errors as HTTP answers);
* :mod:`.reports` and :mod:`.report_serializers`: ``ReportViewSet``;
* :mod:`.schedules` and :mod:`.schedule_serializers`: ``ScheduleViewSet``, validated by
  :mod:`django_async_reports.schedules.validation`;
* :mod:`.filters`: the reports list's filter set;
* :mod:`.parameters_schema`: a generator's parameters as JSON Schema (``/types/``);
* :mod:`.openapi`: drf-spectacular's extensions (the ``openapi`` extra), imported by
  ``AppConfig.ready()`` only when drf-spectacular is installed.

Every change goes through the service layer (:mod:`django_async_reports.services`,
:mod:`django_async_reports.schedules`); the API imports neither the admin nor the tasks.
"""
