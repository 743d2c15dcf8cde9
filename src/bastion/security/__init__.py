"""Pure security primitives: values in, values or an error out.

Nothing here imports a web framework, an ORM or the settings object, so each
module can be read, audited and tested alone.
"""
