"""Permissions: org tree and users, roles and Casbin policies, record scopes as SQL, field access,
sharing and reassignment. One enforcement point, used by the record service."""
