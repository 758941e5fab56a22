"""The demo shop's background work: ordinary Django 6 tasks."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.mail import send_mail
from django.tasks import TaskContext, task
from django.utils import timezone


@task(queue_name="emails")
def send_order_confirmation(order_number: int, email: str) -> str:
    """Email the customer (to the console email backend in this demo)."""
    send_mail(
        subject=f"Your order #{order_number}",
        message=f"Thank you! Order #{order_number} is on its way.",
        from_email="shop@example.com",
        recipient_list=[email],
    )
    return f"confirmation for order #{order_number} sent to {email}"


@task(queue_name="media")
def make_thumbnail(product_id: int, width: int, height: int) -> dict[str, object]:
    """Downscale a generated product image by 4 and save it as a PGM file."""
    # A real shop would read an upload with Pillow; a generated gradient keeps the demo
    # dependency-free while doing the same kind of work.
    pixels = [[(x * 7 + y * 3 + product_id) % 256 for x in range(width)] for y in range(height)]
    small = [
        [
            sum(pixels[y + dy][x + dx] for dy in range(4) for dx in range(4)) // 16
            for x in range(0, width - 3, 4)
        ]
        for y in range(0, height - 3, 4)
    ]
    out = Path(settings.VAR_DIR) / "thumbnails" / f"product-{product_id}.pgm"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(" ".join(map(str, row)) for row in small)
    out.write_text(f"P2\n{len(small[0])} {len(small)}\n255\n{rows}\n")
    return {"file": str(out), "size": [len(small[0]), len(small)]}


@task(priority=10)
def nightly_sales_report() -> str:
    """Summarise the day's sales (urgent: priority 10 runs first)."""
    report = {"generated_at": timezone.now().isoformat(), "orders": 3, "revenue": "129.50"}
    out = Path(settings.VAR_DIR) / "reports" / f"sales-{timezone.now():%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return str(out)


@task(takes_context=True)
def charge_card(context: TaskContext, order_number: int, amount: str) -> None:
    """Fail, as a declined card would: the error and traceback are stored on the result."""
    raise RuntimeError(
        f"card declined for order #{order_number} ({amount}), attempt {context.attempt}"
    )


@task
def send_review_request(order_number: int) -> str:
    """Ask for a review a week after delivery (enqueued with run_after)."""
    return f"review request for order #{order_number}"


@task
def record_heartbeat() -> str:
    """Run by the every-minute schedule: proof that cron is calling us."""
    return timezone.now().isoformat()
