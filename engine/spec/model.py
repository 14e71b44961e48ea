"""The spec language, as msgspec types.

These Structs are the single source of truth for what a spec file may say: the loader
decodes YAML into them (unknown keys rejected, wrong types located by file and line),
`specbridge schema` emits their JSON Schema for editors, and the docs generator and
linter read them. Add a capability here, with a test, never as a per-platform special case.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from engine.crypto.profile import CryptoProfile

Card = Annotated[str, Meta(pattern=r"^\d+\.\.(\d+|n)$", description="Cardinality: 1..1, 0..1, 0..n, 1..n, 1..10000")]
Length = Annotated[
    int | str,
    Meta(description="Max length (50), or a range ('4..20', '18..18'). Unit per `length_unit`."),
]

FieldType = Annotated[
    str,
    Meta(
        pattern=r"^(decimal\(\d+,\d+\)|[A-Za-z][A-Za-z0-9_.-]*)$",
        description="string | int | number | decimal(p,s) | date | datetime | time | bool | object | list | binary | file | any,"
        " or a field type a plugin registers (see `specbridge plugins`)",
    ),
]
ExtensionRef = str | dict[str, dict[str, Any] | None]
"""An extension by name, or `{name: {settings}}` when it takes settings."""


class Spec(Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Base for every spec type: unknown keys are errors (a misspelt key must not pass silently)."""


class Condition(Spec, kw_only=True):
    """A condition on sibling fields of the same object (or `$.a.b` from the message root).

    Exactly one test: `equals`, `in_`, `not_in`, `present`, `absent`.
    """

    field: str
    equals: Any = None
    in_: list[Any] | None = msgspec.field(default=None, name="in")
    not_in: list[Any] | None = None
    present: bool | None = None
    absent: bool | None = None


class Field(Spec, kw_only=True):
    """One field of a message, a group or a canonical model.

    The field's name is its key in the enclosing `fields` mapping, verbatim from the document.
    """

    type: FieldType | None = None
    title: str | None = None
    """Chinese label from the document (字段描述)."""
    description: str | None = None
    card: Card | None = None
    """Cardinality. Defaults to 0..1 for scalars/objects and 0..n for lists."""
    required: bool | None = None
    """Shortcut for card 1..1 (scalars, objects) or 1..n (lists)."""
    nullable: bool | None = None
    """Whether JSON null is accepted. Default: true for optional fields, false for required ones."""
    allow_empty: bool | None = None
    """Whether "" satisfies a required string. Default false."""
    length: Length | None = None
    length_unit: Literal["chars", "bytes"] | None = None
    """chars (default) or bytes in `encoding`."""
    encoding: str | None = None
    """Encoding used to count bytes when length_unit is bytes (utf-8, gb2312, gbk, gb18030)."""
    format: str | None = None
    """date/datetime/time: a pattern such as 'yyyy-MM-dd HH:mm:ss' or 'yyyyMMdd'; binary: base64 | hex."""
    pattern: str | None = None
    """Regular expression the whole string value must match."""
    codes: str | None = None
    """Code table id: codes/<id>.yaml of this platform, else specs/common/codes/."""
    codes_strict: bool | None = None
    """When false, a code outside the table is a warning, not an error (document says 'e.g.'). Default true."""
    min: float | None = None
    max: float | None = None
    default: Any = None
    example: Any = None
    aliases: list[str] | None = None
    """Other names accepted on input (documents that misspell a field in their own examples)."""
    severity: Literal["error", "warn"] | None = None
    """warn: rule violations on this field are reported but do not invalidate the message."""
    required_if: Condition | None = None
    forbidden_if: Condition | None = None
    checks: list[ExtensionRef] | None = None
    """Named checks (built-in: id_card, mobile; plugins add more): `[id_card]`, or `[{name: {settings}}]`."""
    settings: dict[str, Any] | None = None
    """Settings of a plugin field type (`type:`), checked against the settings schema it declares."""
    fields: dict[str, Field] | None = None
    """Children of an object, or of each item of a list of objects."""
    items: Field | None = None
    """Item spec of a list of scalars."""
    use: str | None = None
    """Take this object's fields from a shared group (groups/<id>.yaml, or specs/common/groups/)."""
    override: dict[str, Field] | None = None
    """With `use`: per-field attribute overrides (the group's field keeps what is not overridden)."""
    one_of: list[list[str]] | None = None
    """For objects: at least one of these groups of fields must be fully present."""
    carried_as: Literal["json", "xml"] | None = None
    """The value is a string that carries this object/list encoded as JSON or XML (validated inside)."""
    root: str | None = None
    """XML root element name of a carried_as xml payload."""
    xml_attribute: bool | None = None
    """In XML, read this field from an attribute of the parent element rather than a child element."""
    xml_text: bool | None = None
    """In XML, this scalar is the text content of the parent element (an element that also has
    attributes, e.g. `<org code="...">name</org>`); the field's name is the spec's choice."""
    xml_item: str | None = None
    """In XML, a list is a wrapper element named as the field whose children are named xml_item.
    Without it, a list is the repeated child elements named as the field."""
    encrypted: bool | None = None
    """The crypto profile encrypts this field on the wire; format rules apply to the plaintext only."""
    max_bytes: int | None = None
    """file fields: maximum size of the uploaded part."""
    media_types: list[str] | None = None
    """file fields: accepted content types."""
    source: str | None = None
    """Where in the document this field is defined (section / line)."""
    note: str | None = None
    """Why the spec chose what it did where the document is ambiguous."""


class Group(Spec, kw_only=True):
    """A shared field group (common header, PID segment) or a canonical hub model."""

    id: str | None = None
    title: str | None = None
    description: str | None = None
    kind: Literal["group", "model"] = "group"
    fields: dict[str, Field]
    one_of: list[list[str]] | None = None
    key: list[str] | None = None
    source: str | None = None
    note: str | None = None


class CodeValue(Spec, kw_only=True):
    label: str
    en: str | None = None
    note: str | None = None
    deprecated: bool | None = None


class CodeTable(Spec, kw_only=True):
    """A code table (value domain), with every value from the document."""

    id: str | None = None
    title: str
    source: str | None = None
    """Where in the document the table is (appendix, section, lines)."""
    standard: str | None = None
    """The national standard the table follows, if the document names one (GB/T 2261.1, ...)."""
    note: str | None = None
    values: dict[str, str | CodeValue] = msgspec.field(default_factory=dict)
    """code -> label (or a CodeValue). Codes are always strings, verbatim."""
    provider: str | None = None
    """Or: a code-table provider fills `values` when specs load (built-in `csv`; plugins add more)."""
    settings: dict[str, Any] | None = None
    """The provider's settings (e.g. csv: `{file: regions.csv}`)."""


class Body(Spec, kw_only=True):
    """A request or response body."""

    format: Literal["json", "xml", "form", "multipart", "soap", "text", "binary", "row"] = "json"
    """json / xml / form (urlencoded) / multipart / soap (fields are the operation's parameters) /
    text (a plain string result, e.g. `ok:` / `error:`) / binary (a file) / row (a database row)."""
    type: Literal["object", "list"] = "object"
    root: str | None = None
    """XML root element name."""
    use: list[str] | None = None
    """Shared groups whose fields come first in this body."""
    fields: dict[str, Field] = msgspec.field(default_factory=dict)
    one_of: list[list[str]] | None = None
    card: Card | None = None
    """For type list: how many items."""
    extra: Literal["forbid", "ignore", "warn"] | None = None
    """Unknown fields: forbid (default), ignore or warn."""
    pattern: str | None = None
    """For format text: the whole body must match."""
    max_bytes: int | None = None
    note: str | None = None


class HttpBinding(Spec, kw_only=True):
    method: Literal["GET", "POST", "PUT", "DELETE"] = "POST"
    path: str
    content_type: str | None = None
    query: list[str] | None = None
    """Fields carried in the query string instead of the body."""
    headers: dict[str, str] | None = None
    """Fixed request-header values of this interface (wedoctor `service: A1000`): the outbound client
    sets them, the validator and the twin require them (a header of `transport.headers` by name)."""
    note: str | None = None


class SoapBinding(Spec, kw_only=True):
    service: str | None = None
    """WSDL service name (defaults to the platform's transport.soap_service)."""
    operation: str
    action: str | None = None
    version: Literal["1.1", "1.2", "both"] | None = None
    result: str | None = None
    """Name of the result element (default: <operation>Result)."""
    select: dict[str, str] | None = None
    """When one operation carries several payloads: parameter values that select this interface."""
    note: str | None = None


class ViewBinding(Spec, kw_only=True):
    """A database view or table that one side reads (and the other maintains)."""

    name: str
    key: list[str] | None = None
    watermark: str | None = None
    order_by: list[str] | None = None
    note: str | None = None


class ProcedureBinding(Spec, kw_only=True):
    name: str
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    note: str | None = None


class DicomBinding(Spec, kw_only=True):
    service: Literal["C-STORE", "C-FIND", "C-MOVE", "C-ECHO"]
    ae_title: str | None = None
    note: str | None = None


class Binding(Spec, kw_only=True):
    """How an interface travels. An interface may have several bindings (pe_system offers
    each service as Web API, WebService, view and stored procedure)."""

    http: HttpBinding | None = None
    soap: SoapBinding | None = None
    view: ViewBinding | None = None
    procedure: ProcedureBinding | None = None
    dicom: DicomBinding | None = None


class Example(Spec, kw_only=True):
    """A message from the document (cleaned), or a deliberate invalid variant: also a spec unit test."""

    name: str
    part: Literal["request", "response"] = "request"
    body: Any = None
    """The message: a mapping/list for JSON, a string for XML/text."""
    file: str | None = None
    """Or a file next to the spec holding the message."""
    headers: dict[str, str] | None = None
    valid: bool = True
    errors: list[dict[str, str]] | None = None
    """For invalid examples: expected findings, each {path, rule}."""
    source: str | None = None
    note: str | None = None


class ErrorCode(Spec, kw_only=True):
    message: str
    en: str | None = None
    action: Literal["ok", "retry", "reauth", "wait", "fatal", "empty"] = "fatal"
    """What a sender does on this code: retry later, refresh the token and resend, wait (quota),
    give up (fatal -> DEAD), or treat as an empty successful answer."""
    use_for: list[Literal["invalid", "internal"]] | None = None
    """Which answer this code is when we play the platform (inbound routes, twins): `invalid` for
    input that fails validation, `internal` for our own failure. Without it, a best guess is made."""
    note: str | None = None


class SuccessRule(Spec, kw_only=True):
    """How to tell a successful response: a field's value, or a text prefix."""

    field: str | None = None
    """Dotted path in the response body, e.g. `code` or `messagecode`."""
    in_: list[str] | None = msgspec.field(default=None, name="in")
    header: str | None = None
    """Or a response header."""
    prefix: str | None = None
    """For text results (`ok` / `ok:`)."""
    http_status: list[int] | None = None
    note: str | None = None


class TokenCarry(Spec, kw_only=True):
    in_: Literal["header", "body", "query"] = msgspec.field(name="in")
    name: str


class Lockout(Spec, kw_only=True):
    failures: int
    minutes: int | None = None


class Auth(Spec, kw_only=True):
    """How a caller authenticates, as data for the token manager and the twin."""

    kind: Literal["none", "token", "credential", "signature"]
    interface: str | None = None
    """The interface that issues tokens (e.g. getToken)."""
    token_path: str | None = None
    """Where the token is in that interface's response (dotted path)."""
    expires_path: str | None = None
    lifetime_s: int | None = None
    daily_cap: int | None = None
    lockout: Lockout | None = None
    carry: TokenCarry | None = None
    credentials: list[str] | None = None
    """Names of the secrets the bridge configuration must supply (appid, secret...)."""
    note: str | None = None


class Transport(Spec, kw_only=True):
    kind: Literal["http_json", "soap", "form", "dbview", "dicom", "mixed"]
    base_path: str | None = None
    soap_service: str | None = None
    soap_namespace: str | None = None
    soap_version: Literal["1.1", "1.2", "both"] | None = None
    headers: Body | None = None
    """Envelope fields carried in HTTP request headers (validated like a body)."""
    soap_params: dict[str, Field] | None = None
    """When one SOAP operation wraps every interface (pe_system `CallInterface(msgHeader, msgBody)`): its
    string parameters, each usually `carried_as: xml` with a `root`; envelope parameters `use:` a group.
    `SoapBinding.select` keys may be dotted paths into them (`msgHeader.serverName`)."""
    soap_body_param: str | None = None
    """Which of `soap_params` carries the interface's request fields (its own `fields` are the request's)."""
    response_headers: Body | None = None
    max_request_bytes: int | None = None
    note: str | None = None


class Platform(Spec, kw_only=True):
    """platform.yaml: one target (or source) system described by one document."""

    id: str
    title: str
    document: str | None = None
    """The seed document this spec is written from."""
    version: str | None = None
    description: str | None = None
    transport: Transport
    auth: Auth | None = None
    crypto: CryptoProfile | None = None
    success: SuccessRule | None = None
    errors: dict[str, ErrorCode] | None = None
    defaults: Field | None = None
    """Attribute defaults for every field of this platform (length_unit, encoding, nullable...)."""
    extra: Literal["forbid", "ignore", "warn"] | None = None
    limits: dict[str, int] | None = None
    plugins: list[str] | None = None
    """Plugins (distribution names) whose extensions these specs use: named when one is missing."""
    note: str | None = None


class TwinJoin(Spec, kw_only=True):
    """Items of another list of the same request attached to each stored record by equal fields
    (xinjiang_mr: the `lab_subitem` items of a `labmaster` item, joined on org_code + report_form_no)."""

    from_: str = msgspec.field(name="from")
    """Request path of the list whose items are attached (`strReportInfo.lab_subitem`)."""
    on: list[str]
    """Fields that must be equal in the record and in the attached item."""


class TwinWithin(Spec, kw_only=True):
    """A query's time window: only stored records whose `field` lies between the request's `from` and
    `to` (inclusive). A bound the request leaves out: `to` is now (the twin's clock), `from` is
    `default_days` before `to` (open when unset). Times as the specs write them: `yyyy-MM-dd HH:mm:ss`,
    `yyyy-MM-dd`, `yyyyMMddHHmmss`, `yyyyMMdd`; a stored record without a readable time is outside."""

    field: str
    """Stored-record path of the record's time (`checkTime`)."""
    from_: str | None = msgspec.field(default=None, name="from")
    """Request path of the window's start (`checkStartTime`)."""
    to: str | None = None
    """Request path of the window's end (`checkEndTime`)."""
    default_days: float | None = None
    """The window's length when the request gives no start (jilin_imaging: 7 days)."""


class TwinSource(Spec, kw_only=True):
    """One named result set of a twin query: the records of a collection that match the request."""

    collection: str
    match: dict[str, str] | None = None
    """Stored-record path -> request path. A request value that is absent or "" does not constrain;
    paths may go through lists (`subitems[].class_code`) and match when any value is shared."""
    within: TwinWithin | None = None
    """Only records whose time lies in the request's window."""


class TwinAuthCodes(Spec, kw_only=True):
    """On the token interface: which of the platform's documented codes the twin's token authority
    answers with. An unset code falls back to the platform's first `reauth` (token) or `fatal` code."""

    missing: str | None = None
    """A business call without a token (city_lab_mr 1003)."""
    invalid: str | None = None
    """A token the platform never issued (city_lab_mr 1002, jilin_imaging 403)."""
    expired: str | None = None
    """A token past auth.lifetime_s (city_lab_mr 1001, jilin_imaging 403)."""
    bad_credentials: str | None = None
    """Wrong credentials on the token call (jilin_imaging 11001, city_lab_mr 1005)."""
    locked: str | None = None
    """Refused while locked out after auth.lockout.failures bad credentials (jilin_imaging 11003)."""
    cap: str | None = None
    """auth.daily_cap tokens already issued today (jilin_imaging 11004)."""


class Twin(Spec, kw_only=True):
    """How `specbridge twin` serves this interface: what it does with a valid request, and what it
    answers. A declarative stand-in built from the spec: no per-platform code.

    The answer's success marker (the SuccessRule's field, header or text prefix, and the ok code's
    message) is filled in automatically; `reply` gives the rest of the response body as a template.
    """

    action: Literal["store", "query", "delete", "token", "echo", "accept"] = "accept"
    """store: upsert the request's record(s) into `collection`; query: answer from `sources` (or
    `collection` + `match`); delete: remove the matching records; token: issue a token (auth limits
    apply); echo: answer from the request and constants, nothing recorded; accept: count the delivery,
    keep nothing. An interface without `twin:` is served as accept."""
    collection: str | None = None
    """A named store shared by the platform's interfaces (`exams`, `lab_reports`)."""
    records: str | None = None
    """store: request path of a list whose items are the records (`strReportInfo.labmaster`); default:
    the whole request is one record."""
    key: list[str] | None = None
    """store: record fields that identify a record (an upsert replaces it, keeping its id). Default: the
    interface's `key`, relative to `records`."""
    attach: dict[str, TwinJoin] | None = None
    """store: per record, the items of other request lists that belong to it, kept under these names."""
    match: dict[str, str] | None = None
    """query, delete: stored-record path -> request path (see TwinSource.match). Delete defaults to the
    interface key paths."""
    within: TwinWithin | None = None
    """query: only records whose time lies in the request's window (see TwinWithin)."""
    sources: dict[str, TwinSource] | None = None
    """query: several named result sets (`labs`, `exams`); `collection` + `match` (+ `within`) is the
    one-source shorthand, named `records`."""
    reply: Any = None
    """The response body as a template: constants, and strings starting with `$`: `$id` (the record's
    generated id), `$.path` (the current record or item), `$record.path` (the item's stored record),
    `$request.path`, `$token`, `$now`, `$count`, `$$` (a literal `$`); `"http://h/{$id}"` interpolates.
    A mapping with `$each: <result set>[.<list path>]` or `$each: $.path` renders one item per record
    (`$where` filters, `$copy: $.` starts from the record's fields, `$value` makes scalar items); a list
    concatenates its parts. Fields the response does not declare are dropped; a value that resolves to
    nothing is left out. See docs/spec-language.md, "Twins"."""
    empty: str | None = None
    """query: the platform code answered when nothing matches (jilin_imaging 404); delete: when nothing
    was there. Default: a success with no records."""
    codes: TwinAuthCodes | None = None
    """token: the codes of the token authority."""
    note: str | None = None


class Reconcile(Spec, kw_only=True):
    """How to ask the platform whether a delivery of this interface arrived. A message is in doubt when
    its sender died (or was stopped) mid-send: the platform may hold it with no outcome recorded. With
    this section the runtime asks first and sends only what the platform lacks (exactly-once across a
    crash); without it an in-doubt message is sent again (at-least-once). See docs/spec-language.md."""

    query: str
    """An interface of the same platform that answers the question (jilin_imaging: queryFormerlyExam)."""
    mapping: str
    """The mapping (specs/mappings/<id>.yaml, from this interface to `query`) that builds the query from
    the request as it was sent; it gives defaults for what the sent request lacks."""
    records: str | None = None
    """Path in the query's answer of the list of records found (`datas`); absent: the answer is one record."""
    match: dict[str, str]
    """Answer record field -> sent request field: a record whose fields all equal the sent ones is the
    delivery (found: no resend). A "not found" answer (an `empty` code, an empty list) means send it."""
    note: str | None = None


class Interface(Spec, kw_only=True):
    """One interface (operation) of a platform, in its own file."""

    id: str
    title: str
    description: str | None = None
    source: str | None = None
    binding: Binding | None = None
    key: list[str] | None = None
    """Natural key (paths into the request) used for idempotency."""
    request: Body | None = None
    response: Body | None = None
    headers: Body | None = None
    """Request headers of this interface, replacing the platform's transport.headers
    (e.g. a token call that carries none of the envelope)."""
    response_headers: Body | None = None
    """Response headers of this interface, replacing the platform's transport.response_headers."""
    success: SuccessRule | None = None
    errors: dict[str, ErrorCode] | None = None
    limits: dict[str, int] | None = None
    examples: list[Example] | None = None
    twin: Twin | None = None
    """How `specbridge twin` serves this interface (state, reply); absent: validate and accept."""
    reconcile: Reconcile | None = None
    """How to ask the platform whether an in-doubt delivery arrived before sending it again."""
    note: str | None = None


SPEC_KINDS: dict[str, type[Spec]] = {
    "platform": Platform,
    "interface": Interface,
    "group": Group,
    "codes": CodeTable,
}
