"""Admin pages: task results (with their actions), the batch log, schedules, a dashboard."""

from __future__ import annotations

from django.contrib import admin

from django_cronrunner.models import BatchRun, Dashboard, ScheduleState, TaskRecord
from django_cronrunner.web.admin_batches import BatchRunAdmin
from django_cronrunner.web.admin_dashboard import DashboardAdmin
from django_cronrunner.web.admin_schedules import ScheduleStateAdmin
from django_cronrunner.web.admin_tasks import TaskRecordAdmin

admin.site.register(TaskRecord, TaskRecordAdmin)
admin.site.register(BatchRun, BatchRunAdmin)
admin.site.register(Dashboard, DashboardAdmin)
admin.site.register(ScheduleState, ScheduleStateAdmin)
