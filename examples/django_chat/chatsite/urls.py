from django.urls import path

from chat import views

urlpatterns = [
    path("", views.room),
    path("health/", views.health),
]
