#!/bin/sh
# Google Cloud Scheduler calls the site's HTTP trigger every minute. Run once, with the secret in
# the environment:  CRONRUNNER_TRIGGER_SECRET=... sh cloud-scheduler.sh
# The key goes in X-Cronrunner-Key, so an OIDC token (Cloud Run) can keep the Authorization
# header. --attempt-deadline must exceed CRONRUNNER_TRIGGER_REQUEST_TIMEOUT, the site's request
# limit (Cloud Run's --timeout), which caps every call.
set -eu
gcloud scheduler jobs create http cronrunner-trigger \
    --location="${LOCATION:-europe-west1}" \
    --schedule="* * * * *" \
    --uri="https://example.com/cron/trigger/" \
    --http-method=POST \
    --headers="X-Cronrunner-Key=${CRONRUNNER_TRIGGER_SECRET}" \
    --attempt-deadline=120s \
    --max-retry-attempts=0
