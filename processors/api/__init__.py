"""The REST API at /api/v1/, in four parts.

- ``policy``: permissions, throttles, pagination, the filter backend, formats and the one error shape;
- ``serializers`` and ``report_serializers``: the representations of records and of computed answers;
- ``views`` (the viewsets, one per resource) and ``reports`` (the views answering one computed document),
  thin: they translate input and call the selectors, the services and the domain's core functions;
- ``urls``: the routes, mounted by ``registry.urls``.
"""
