"""Enqueue a handful of realistic tasks, as views of a shop would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from shop.tasks import (
    charge_card,
    make_thumbnail,
    nightly_sales_report,
    send_order_confirmation,
    send_review_request,
)


class Command(BaseCommand):
    help = "Enqueue the demo tasks and print their ids."

    def handle(self, *args: Any, **options: Any) -> None:
        results = [
            send_order_confirmation.enqueue(1001, "ada@example.com"),
            make_thumbnail.enqueue(product_id=7, width=64, height=48),
            nightly_sales_report.enqueue(),
            charge_card.enqueue(1002, amount="49.90"),
            send_review_request.using(run_after=timezone.now() + timedelta(days=7)).enqueue(1001),
        ]
        for result in results:
            self.stdout.write(
                f"enqueued {result.task.name:<24} id={result.id} priority={result.task.priority} "
                f"queue={result.task.queue_name}"
                + (f" run_after={result.task.run_after:%Y-%m-%d}" if result.task.run_after else "")
            )
