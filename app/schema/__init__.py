"""YAML → validated, immutable specs. Imports neither Flask nor SQLAlchemy."""
from .issues import Issue, SchemaError
from .loader import load_schema, load_schema_text
from .model import ChoiceListSpec, FieldSpec, Label, OptionSpec, SchemaSpec, TableSpec

__all__ = ["Issue", "SchemaError", "load_schema", "load_schema_text", "ChoiceListSpec", "FieldSpec",
           "Label", "OptionSpec", "SchemaSpec", "TableSpec"]
