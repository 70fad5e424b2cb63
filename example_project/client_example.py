"""The seed's "Generate Sales Report" usage example, runnable against the demo.

    DEMO_TOKEN=<token printed by scripts/demo.sh> python example_project/client_example.py

``DEMO_URL`` (default http://localhost:8000), ``REPORT_TYPE`` (default sales)
and ``OUTPUT`` (default sales_report.csv) may be set too. Apart from reading
those variables and giving up after a while, this is the seed's code.
"""

import os
import sys
import time

import requests

BASE_URL = os.environ.get("DEMO_URL", "http://localhost:8000").rstrip("/")
YOUR_TOKEN = os.environ.get("DEMO_TOKEN") or sys.exit("Set DEMO_TOKEN to the demo's API token.")
REPORT_TYPE = os.environ.get("REPORT_TYPE", "sales")
OUTPUT = os.environ.get("OUTPUT", "sales_report.csv")

# Create report
response = requests.post(
    f"{BASE_URL}/api/v1/reports/",
    headers={"Authorization": f"Bearer {YOUR_TOKEN}"},
    json={
        "report_type": REPORT_TYPE,
        "title": "December Sales Report",
        "priority": "high",
        "parameters": {"start_date": "2024-12-01", "end_date": "2024-12-31"}
        if REPORT_TYPE == "sales"
        else {},
    },
    timeout=30,
)
response.raise_for_status()
report_id = response.json()["id"]
print(f"Report {report_id} created")

# Monitor progress
deadline = time.monotonic() + 600
while True:
    progress_response = requests.get(
        f"{BASE_URL}/api/v1/reports/{report_id}/progress/",
        headers={"Authorization": f"Bearer {YOUR_TOKEN}"},
        timeout=30,
    )

    progress_data = progress_response.json()
    print(f"Progress: {progress_data['progress']}% - {progress_data['message']}")

    if progress_data["status"] == "completed":
        break
    if progress_data["status"] in ("failed", "cancelled") or time.monotonic() > deadline:
        sys.exit(f"Report {report_id} did not complete: {progress_data}")

    time.sleep(2)

# Download report
download_response = requests.get(
    f"{BASE_URL}/api/v1/reports/{report_id}/download/",
    headers={"Authorization": f"Bearer {YOUR_TOKEN}"},
    timeout=60,
)
download_response.raise_for_status()

with open(OUTPUT, "wb") as f:
    f.write(download_response.content)

rows = download_response.content.count(b"\n") - 1
print(f"Saved {OUTPUT}: {rows} rows, {len(download_response.content):,} bytes")
