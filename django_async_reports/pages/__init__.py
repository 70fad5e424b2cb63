"""The "My reports" page: request, follow, cancel, regenerate and download reports in a browser.

Mount it with ``path("reports/", include("django_async_reports.pages.urls"))``
beside the API (``include("django_async_reports.urls")``), which the page
calls with the browser's session: ``SessionAuthentication`` must be among the
API's authentication classes (check W050). Anonymous visitors are sent to the
host's ``LOGIN_URL``. Templates and static files are the package's own (no
build step, no CDN) and can be overridden like any app's: see docs/pages.md.
"""

from . import checks  # noqa: F401  (registers W050)
