from django.urls import path

from jobs import views

urlpatterns = [
    path("report/<str:name>", views.queue_report),
    path("status", views.status),
]
