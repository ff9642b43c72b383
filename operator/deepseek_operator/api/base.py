"""The base of every API model, and cross-field rules written once for two enforcers.

A cross-field rule is a CEL expression (enforced by the Kubernetes API server through
`x-kubernetes-validations`) paired with a Python predicate (enforced by pydantic) and one
message and field path. Keeping both halves in one record is what lets a test hold them to the
same verdict on the same inputs: the operator, the CLI and `kubectl apply` reject the same
resources with the same message at the same field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import ExtraValues
from pydantic_core import InitErrorDetails, PydanticCustomError

GROUP = "serving.deepseek-operator.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DNS_1035_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


@dataclass(frozen=True)
class CrossFieldRule:
    """One rule over several fields of a model, stated in CEL and in Python.

    `field_path` is relative to the model, in the API server's form (`.min`, `.migration.x`); the
    error is reported there rather than on the whole object. `holds` receives the validated model.
    """

    cel: str
    message: str
    holds: Callable[[Any], bool]
    field_path: str = ""

    def as_validation(self) -> dict[str, str]:
        rule = {"rule": self.cel, "message": self.message}
        if self.field_path:
            rule["fieldPath"] = self.field_path
        return rule

    def location(self) -> tuple[str, ...]:
        return tuple(part for part in self.field_path.split(".") if part)


def _schema_extras(schema: dict[str, Any], model: type[Any]) -> None:
    """Attach the model's cross-field rules to its JSON schema as CEL validations."""
    rules: tuple[CrossFieldRule, ...] = getattr(model, "cross_field_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [rule.as_validation() for rule in rules]


class ApiModel(BaseModel):
    """camelCase on the wire, strict types (as strict as the API server), unknown fields refused.

    Strict mode keeps pydantic from coercing `"3"` into 3 where the API server would refuse it;
    models are frozen because the planner treats them as values.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        strict=True,
        frozen=True,
        # NaN and infinities cannot travel in JSON to the API server; from YAML they are refused
        # as what they are, not as "less than or equal to" a bound
        allow_inf_nan=False,
        json_schema_extra=_schema_extras,
    )

    cross_field_rules: ClassVar[tuple[CrossFieldRule, ...]] = ()

    @model_validator(mode="after")
    def _check_cross_field_rules(self) -> Self:
        failures = self._duplicate_list_entries()
        failures += [
            InitErrorDetails(
                type=PydanticCustomError("cross_field", rule.message),
                loc=rule.location(),
                input=self._value_at(rule.location()),
            )
            for rule in type(self).cross_field_rules
            if not rule.holds(self)
        ]
        if failures:
            raise ValidationError.from_exception_data(type(self).__name__, failures)
        return self

    def _duplicate_list_entries(self) -> list[InitErrorDetails]:
        """What the API server enforces for `x-kubernetes-list-type` map and set: unique keys."""
        failures: list[InitErrorDetails] = []
        for name, info in type(self).model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            list_type = extra.get("x-kubernetes-list-type")
            if list_type not in ("map", "set"):
                continue
            map_keys = extra.get("x-kubernetes-list-map-keys")
            map_keys = map_keys if isinstance(map_keys, list) else []
            seen: set[Any] = set()
            for index, item in enumerate(getattr(self, name)):
                key = tuple(_field_by_alias(item, str(k)) for k in map_keys) if map_keys else item
                if key in seen:
                    shown = (
                        ", ".join(f"{k}={v!r}" for k, v in zip(map_keys, key, strict=True))
                        if map_keys
                        else repr(item)
                    )
                    failures.append(
                        InitErrorDetails(
                            type=PydanticCustomError(
                                "duplicate", "Duplicate value: {key}", {"key": shown}
                            ),
                            loc=(info.alias or name, index),
                            input=item,
                        )
                    )
                seen.add(key)
        return failures

    def _value_at(self, location: tuple[str, ...]) -> Any:
        value: Any = self
        for alias in location:
            if not isinstance(value, BaseModel):
                return None
            value = _field_by_alias(value, alias)
        return value

    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = None,
        from_attributes: bool | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        """Wire input is read by camelCase names only, as the API server reads it.

        `context_length` is an unknown field to the API server, so it is one here too; Python
        code still constructs models by field name (`Replicas(min=1, max=4)`).
        """
        return super().model_validate(
            obj,
            strict=strict,
            extra=extra,
            from_attributes=from_attributes,
            context=context,
            by_alias=by_alias,
            by_name=False if by_name is None else by_name,
        )

    @classmethod
    def model_validate_json(
        cls,
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        """JSON input, like `model_validate`, by camelCase names only."""
        return super().model_validate_json(
            json_data,
            strict=strict,
            extra=extra,
            context=context,
            by_alias=by_alias,
            by_name=False if by_name is None else by_name,
        )

    @classmethod
    def from_object(cls, data: Mapping[str, Any]) -> Self:
        """Validate any mapping, e.g. a kopf Body or Spec view, which strict mode would refuse
        as "not a dict": nested mappings and sequences are copied into plain dicts and lists."""
        return cls.model_validate(_plain(data))

    def to_json_dict(self) -> dict[str, Any]:
        """The wire form: camelCase, absent instead of null."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _field_by_alias(model: BaseModel, alias: str) -> Any:
    for name, info in type(model).model_fields.items():
        if (info.alias or name) == alias:
            return getattr(model, name)
    return None


class ApiResource(ApiModel):
    """A top-level object: its metadata.name must fit the objects the operator derives from it.

    The API server only asks for a DNS-1123 subdomain (dots, 253 characters); the CRD narrows
    that to `name_pattern` and 63 characters, so a name the operator could not use for a
    Service, a Deployment or a label value is refused at the door.
    """

    name_pattern: ClassVar[str] = DNS_1123_LABEL_PATTERN
    name_max_length: ClassVar[int] = 63

    @field_validator("metadata", check_fields=False)
    @classmethod
    def _name_fits(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        name = metadata.get("name")
        if isinstance(name, str) and (
            len(name) > cls.name_max_length or re.fullmatch(cls.name_pattern, name) is None
        ):
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "object_name",
                            "metadata.name must be at most {max} characters matching {pattern}",
                            {"max": cls.name_max_length, "pattern": cls.name_pattern},
                        ),
                        loc=("name",),
                        input=name,
                    )
                ],
            )
        return metadata

    @classmethod
    def metadata_schema(cls) -> dict[str, Any]:
        """The only metadata restriction a CRD may carry: on metadata.name."""
        return {
            "type": "object",
            "properties": {
                "name": {
                    "type": "string",
                    "description": "Name of the object; the operator derives object names and "
                    "labels from it.",
                    "maxLength": cls.name_max_length,
                    "pattern": cls.name_pattern,
                }
            },
        }
