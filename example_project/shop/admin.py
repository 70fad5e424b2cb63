from django.contrib import admin

from .models import Customer, Order, Product


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "region", "created_at"]
    list_filter = ["region"]
    search_fields = ["name", "email"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "category", "unit_price", "stock", "reorder_level"]
    list_filter = ["category"]
    search_fields = ["sku", "name"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "customer", "product", "quantity", "total", "status"]
    list_filter = ["status", "region"]
    list_select_related = ["customer", "product"]
    raw_id_fields = ["customer", "product"]
    date_hierarchy = "created_at"
    search_fields = ["=id", "customer__email"]
    show_full_result_count = False
