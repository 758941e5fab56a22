"""The web side: admin pages and dashboard, the HTTP trigger and visitor mode, the metrics view."""
