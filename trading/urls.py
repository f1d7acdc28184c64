from django.urls import path

from trading.api import MarketPriceApi

urlpatterns = [
    path("market/<str:symbol>", MarketPriceApi.as_view(), name="market-price"),
]
