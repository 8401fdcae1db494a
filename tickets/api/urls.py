from django.urls import path

from tickets.api import views

urlpatterns = [
    path("", views.TicketListView.as_view(), name="ticket-list"),
    path("<str:ticket_number>/", views.TicketDetailView.as_view(), name="ticket-detail"),
    path("<str:ticket_number>/allocate/", views.TicketAllocateView.as_view(), name="ticket-allocate"),
]
