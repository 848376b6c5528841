"""The model specification: schema, YAML loading with line numbers, validation, defaults.

Public interface (used by the CLI and the generator):
    load_spec(path: str | Path, overrides: list[str]) -> Spec      raises SpecError
    load_spec_text(text: str, source: str, overrides) -> Spec      pure, for tests
    default_spec() -> Spec
    example_yaml() -> str        the annotated default spec
    json_schema() -> dict
"""
