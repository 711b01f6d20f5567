"""The web layer: Starlette app, REST API, authentication, generated screens and templates."""

from starlette.convertors import IntegerConvertor, register_url_convertor


class RecordIdConvertor(IntegerConvertor):
    """`{id:int}` in every route: at most 18 digits, so an id no database can hold is a 404.
    Registered here, before any route module is imported (routes compile their paths then)."""

    regex = "[0-9]{1,18}"


register_url_convertor("int", RecordIdConvertor())
