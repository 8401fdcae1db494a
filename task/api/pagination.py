"""The task lists' pagination: `?page=` and `?page_size=` as everywhere, counted on the lean rows.

The list views hand the paginator the filtered, ordered tasks without the row
columns (task.selectors). The count runs on exactly that, so it joins only the
tables a filter needs (`search` and `ticket_number` join the ticket); the page
itself gets the ticket and workflow columns (`task_rows`). Counting the
annotated queryset instead would keep the annotations' joins in the COUNT and
turn an index-only count into a scan of the table.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet

from task.models import Task
from task.selectors import task_rows
from workflow_api.core.pagination import PageNumberPagination


class TaskPaginator(Paginator):
    def __init__(self, object_list: QuerySet[Task], per_page: int | str, *args: Any, **kwargs: Any) -> None:
        self.counted = object_list
        super().__init__(task_rows(object_list), per_page, *args, **kwargs)

    @cached_property
    def count(self) -> int:
        return self.counted.count()


class TaskPagination(PageNumberPagination):
    django_paginator_class = TaskPaginator
