"""The OpenAI request bodies the server accepts, and its OpenAI-style errors.

Unknown fields are ignored, as OpenAI-compatible servers commonly do, so clients that send
extra options keep working. Options that would change the answer but are not implemented
(several choices, log-probabilities, tools, penalties) are refused with a 400 that names them
rather than silently ignored.

Types are strict, as OpenAI's own API is: `"max_tokens": true` is not 1 and `"stream": "yes"`
is not true; both are a 400 naming the field. Integers are accepted where a number is expected.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

MAX_STOP_SEQUENCES = 4

Model = TypeVar("Model", bound=BaseModel)


class ApiError(Exception):
    """An error the client caused or must handle, rendered as OpenAI's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    include_usage: bool = False


class GenerationRequest(BaseModel):
    """The fields both generation routes share."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, strict=True)

    model: str
    max_tokens: int | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] = 1.0
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    ignore_eos: bool = False
    """vLLM's extension: keep generating past the end-of-sequence token (for load tests)."""
    seed: int | None = None
    """Accepted for compatibility; sampling is seeded per server, not per request."""
    user: str | None = None

    @field_validator(
        "temperature",
        "top_p",
        "stream",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "ignore_eos",
        mode="before",
    )
    @classmethod
    def _null_means_default(cls, value: Any, info: ValidationInfo) -> Any:
        # OpenAI accepts `null` for optional parameters, and some clients send it.
        if value is None and info.field_name is not None:
            return cls.model_fields[info.field_name].default
        return value

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
        return value

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def refuse_unsupported(self) -> None:
        if self.n != 1:
            raise ApiError(400, "only n=1 is supported", param="n")
        if self.presence_penalty != 0 or self.frequency_penalty != 0:
            param = "presence_penalty" if self.presence_penalty != 0 else "frequency_penalty"
            raise ApiError(400, f"{param} is not supported by this server (only 0)", param=param)


class CompletionRequest(GenerationRequest):
    prompt: str | list[int] | list[str]
    logprobs: int | None = None
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        prompts = self.prompt if isinstance(self.prompt, list) else []
        if prompts and isinstance(prompts[0], str) and len(prompts) != 1:
            raise ApiError(400, "only one prompt per request is supported", param="prompt")
        if self.logprobs is not None:
            raise ApiError(400, "logprobs is not supported by this server", param="logprobs")
        if self.echo:
            raise ApiError(400, "echo is not supported by this server", param="echo")
        if self.suffix:
            raise ApiError(400, "suffix is not supported by this server", param="suffix")
        if self.best_of not in (None, 1):
            raise ApiError(400, "best_of is not supported by this server", param="best_of")


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatRequest(GenerationRequest):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: int | None = None
    logprobs: bool | None = None
    tools: list[Any] | None = None

    def requested_max_tokens(self) -> int | None:
        return (
            self.max_completion_tokens
            if self.max_completion_tokens is not None
            else self.max_tokens
        )

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.logprobs:
            raise ApiError(400, "logprobs is not supported by this server", param="logprobs")
        if self.tools:
            raise ApiError(400, "tools are not supported by this server", param="tools")


def parse_body(model: type[Model], body: Any) -> Model:
    """Validate a decoded JSON body; the first problem becomes a 400 naming its field."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        location = ".".join(str(part) for part in first["loc"]) or None
        raise ApiError(400, f"{location}: {first['msg']}", param=location) from None
