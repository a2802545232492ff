"""Importing the roster from a CSV file (one row per extension), all or nothing.

Three steps, so a bad file is reported in full and changes nothing:

1. `parse_roster(bytes)` - pure: decoding, header, every cell through the model's own validators,
   and the checks between rows (a device twice, a trainee without a curator, conflicting values).
2. `check_against_database(roster)` - reads only: curators named but not in the file, devices
   already owned by someone else, a curator demoted while trainees outside the file keep him.
3. `apply_roster(roster)` - one transaction: users, then extensions, each through `full_clean`;
   any error rolls everything back.

`import_roster(data, dry_run=...)` runs the three and raises `RosterImportError` with every problem.
The columns are documented in docs/roster-import.md. Problems are worded in the language active
when they are found: the admin page's, or the command's (LANGUAGE_CODE or its --language).
"""

import csv
import io
from dataclasses import dataclass, field

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from .models import Extension, PhonePreset, Role, Technology, User
from .validators import validate_display_text

USER_COLUMNS = ("username", "first_name", "last_name", "email", "role", "curator", "password")
EXTENSION_COLUMNS = ("technology", "resource", "display_name", "phone_preset", "originate_context", "monitorable",
                     "record_calls")
COLUMNS = USER_COLUMNS + EXTENSION_COLUMNS
REQUIRED_COLUMNS = ("username", "role")
# Present together or not at all: a file may hold only users, never half an extension.
EXTENSION_KEY_COLUMNS = ("technology", "resource")

TRUE_WORDS = {"1", "true", "yes", "y", "on"}
FALSE_WORDS = {"0", "false", "no", "n", "off"}


@dataclass(frozen=True, order=True)
class RowError:
    line: int  # 1 is the header; 0 means the file as a whole
    column: str
    message: str

    def __str__(self):
        where = _("line %(line)d") % {"line": self.line} if self.line else _("file")
        if self.column:
            where = _("%(where)s, column %(column)s") % {"where": where, "column": self.column}
        return _("%(where)s: %(problem)s") % {"where": where, "problem": self.message}


class RosterImportError(Exception):
    def __init__(self, errors):
        self.errors = sorted(set(errors))
        super().__init__("\n".join(str(error) for error in self.errors))


@dataclass
class UserRow:
    """One person, merged from every row that names him."""

    username: str
    line: int  # his first row
    values: dict = field(default_factory=dict)  # column -> value, only columns the file has
    value_lines: dict = field(default_factory=dict)  # column -> line the value came from
    password: str | None = None
    invalid: set = field(default_factory=set)  # columns with a bad value (reported already)

    @property
    def role(self):
        return self.values.get("role", "")

    @property
    def curator(self):
        return self.values.get("curator", "")


@dataclass
class ExtensionRow:
    line: int
    username: str
    values: dict

    def unsaved(self):
        return Extension(**self.values)

    @property
    def device(self):
        return self.unsaved().device


@dataclass
class ParsedRoster:
    columns: tuple = ()
    users: dict = field(default_factory=dict)  # username -> UserRow, in file order
    extensions: list = field(default_factory=list)


@dataclass
class ImportReport:
    users_created: list = field(default_factory=list)
    users_updated: list = field(default_factory=list)
    users_unchanged: list = field(default_factory=list)
    extensions_created: list = field(default_factory=list)
    extensions_updated: list = field(default_factory=list)
    extensions_unchanged: list = field(default_factory=list)
    dry_run: bool = False

    def summary(self):
        counts = {"uc": len(self.users_created), "uu": len(self.users_updated), "un": len(self.users_unchanged),
                  "ec": len(self.extensions_created), "eu": len(self.extensions_updated),
                  "en": len(self.extensions_unchanged)}
        if self.dry_run:
            return _("Users: %(uc)d created, %(uu)d updated, %(un)d unchanged. Extensions: %(ec)d created, "
                     "%(eu)d updated, %(en)d unchanged (would be - dry run, nothing saved).") % counts
        return _("Users: %(uc)d created, %(uu)d updated, %(un)d unchanged. Extensions: %(ec)d created, "
                 "%(eu)d updated, %(en)d unchanged.") % counts


# --- 1. parsing (pure) ---------------------------------------------------------------------------


def decode(data):
    """Bytes to text: UTF-8, with or without a BOM. Returns (text, errors)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, [RowError(0, "", _("the file is UTF-16 (Excel 'Unicode text'); save it as 'CSV UTF-8'"))]
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start : exc.start + 1].hex()
        return None, [RowError(line, "", _("not UTF-8 text (byte 0x%(byte)s); save the file as 'CSV UTF-8'") % {
            "byte": byte})]


# What a bad value of each choice column is told (gettext_noop: worded when the problem is found).
NOT_A_CHOICE = {
    "role": gettext_noop("%(value)s is not a role (one of: %(choices)s)"),
    "channel technology": gettext_noop("%(value)s is not a channel technology (one of: %(choices)s)"),
    "phone preset": gettext_noop("%(value)s is not a phone preset (one of: %(choices)s)"),
}


def _choice(choices, what):
    """A cell validator: case-insensitive match against a TextChoices, giving the canonical value."""

    def validate(value):
        for choice in choices.values:
            if value.lower() == choice.lower():
                return choice
        raise ValidationError(_(NOT_A_CHOICE[what]) % {"value": repr(value), "choices": ", ".join(choices.values)})

    return validate


def _check(errors, line, column, validate, value):
    """Run a validator; on failure record every message for this cell and return None."""
    try:
        return validate(value)
    except ValidationError as exc:
        for message in exc.messages:
            errors.append(RowError(line, column, message))
        return None


def _model_field(model, name):
    model_field = model._meta.get_field(name)
    return lambda value: model_field.clean(value, None)


def _display_text(model, name):
    model_field = model._meta.get_field(name)

    def validate(value):
        validate_display_text(value)
        return model_field.clean(value, None)

    return validate


def _monitorable(value):
    lowered = value.strip().lower()
    if lowered == "" or lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ValidationError(_("%(value)s is not yes/no (use 1/0, yes/no, true/false)") % {"value": repr(value)})


def _record_calls(value):
    """Empty means no: recording is opted into (history/recordings_bridge.py)."""
    lowered = value.strip().lower()
    if lowered == "":
        return False
    return _monitorable(value)


def _username(value):
    if value == "":
        raise ValidationError(_("a username is required"))
    return _model_field(User, "username")(value)


def _curator_name(value):
    return _model_field(User, "username")(value) if value else ""


USER_CELL = {
    "username": _username,
    "first_name": _display_text(User, "first_name"),
    "last_name": _display_text(User, "last_name"),
    "email": _model_field(User, "email"),
    "role": lambda value: _choice(Role, "role")(value) if value else "",
    "curator": _curator_name,
}
EXTENSION_CELL = {
    "technology": _choice(Technology, "channel technology"),
    "resource": _model_field(Extension, "resource"),
    "display_name": _model_field(Extension, "display_name"),
    "phone_preset": lambda value: _choice(PhonePreset, "phone preset")(value or PhonePreset.CALL_INFO),
    "originate_context": _model_field(Extension, "originate_context"),
    "monitorable": _monitorable,
    "record_calls": _record_calls,
}


def _read_header(header, errors):
    columns = [name.strip().lower() for name in header]
    for index, name in enumerate(columns):
        if name not in COLUMNS:
            errors.append(
                RowError(1, name or f"#{index + 1}", _("unknown column %(name)s; the columns are: %(columns)s") % {
                    "name": repr(name), "columns": ", ".join(COLUMNS)})
            )
        elif columns.index(name) != index:
            errors.append(RowError(1, name, _("this column appears twice")))
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            errors.append(RowError(1, name, _("this column is missing (required)")))
    present = [name for name in EXTENSION_KEY_COLUMNS if name in columns]
    if len(present) == 1:
        missing = next(name for name in EXTENSION_KEY_COLUMNS if name not in columns)
        errors.append(RowError(1, missing, _("this column is missing (needed with %(column)s)") % {
            "column": present[0]}))
    return tuple(columns)


def _merge_user(users, username, line, cells, errors):
    user = users.get(username)
    if user is None:
        user = users[username] = UserRow(username=username, line=line)
    for column, value in cells.items():
        if column == "password":
            if value and user.password is not None and value != user.password:
                errors.append(RowError(line, column, _("differs from the password on line %(line)d") % {
                    "line": user.value_lines[column]}))
            elif value and user.password is None:
                user.password, user.value_lines[column] = value, line
            continue
        if value is None:
            user.invalid.add(column)
        if value in (None, ""):
            user.values.setdefault(column, "")
            continue
        known = user.values.get(column, "")
        if known and known != value:
            errors.append(
                RowError(line, column, _("%(value)s conflicts with %(known)s on line %(line)d") % {
                    "value": repr(value), "known": repr(known), "line": user.value_lines[column]})
            )
        elif not known:
            user.values[column], user.value_lines[column] = value, line


def parse_roster(data):
    """Bytes of a CSV file -> (ParsedRoster, [RowError]). No database access."""
    text, errors = decode(data)
    roster = ParsedRoster()
    if text is None:
        return roster, errors
    if text.strip() == "":
        return roster, [RowError(0, "", _("the file is empty"))]
    first_line = text.split("\n", 1)[0]
    # Excel in many locales (Russian among them) saves "CSV" with semicolons.
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        roster.columns = _read_header(header, errors)
        if errors:
            return roster, errors
        rows = 0
        line_before = reader.line_num
        for row in reader:
            # Where the record starts: a quoted value may span several physical lines.
            line, line_before = line_before + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            rows += 1
            if len(row) != len(roster.columns):
                errors.append(RowError(line, "", ngettext(
                    "has %(count)d field, the header has %(header)d", "has %(count)d fields, the header has %(header)d",
                    len(row)) % {"count": len(row), "header": len(roster.columns)}))
                continue
            _parse_row(roster, dict(zip(roster.columns, row)), line, errors)
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, "", _("not readable as CSV: %(why)s") % {"why": exc}))
        return roster, errors
    if rows == 0:
        errors.append(RowError(0, "", _("the file has a header but no rows")))
    _check_between_rows(roster, errors)
    return roster, errors


def _parse_row(roster, raw, line, errors):
    cells = {}
    for column in USER_COLUMNS:
        if column in raw:
            if column == "password":
                cells[column] = raw[column]
            else:
                cells[column] = _check(errors, line, column, USER_CELL[column], raw[column])
    if cells.get("username") is None:
        return
    username = cells.pop("username")
    _merge_user(roster.users, username, line, cells, errors)

    if not any(raw.get(column, "") for column in EXTENSION_KEY_COLUMNS):
        others = [column for column in EXTENSION_COLUMNS if column in raw and raw[column] and column not in ("monitorable", "record_calls")]
        for column in others:
            errors.append(RowError(line, column, _("set, but the row has no technology and resource")))
        return
    values = {}
    for column in EXTENSION_COLUMNS:
        if column not in raw:
            continue
        if column in EXTENSION_KEY_COLUMNS and raw[column] == "":
            errors.append(RowError(line, column, _("required when the row has an extension")))
            values[column] = None
            continue
        values[column] = _check(errors, line, column, EXTENSION_CELL[column], raw[column])
    if any(value is None for value in values.values()):
        return
    extension = ExtensionRow(line=line, username=username, values=values)
    try:
        extension.unsaved().clean()  # the model's rules between fields (a Local device needs its context)
    except ValidationError as exc:
        errors.extend(_field_errors(exc, line, EXTENSION_COLUMNS))
        return
    roster.extensions.append(extension)


def _check_between_rows(roster, errors):
    seen = {}
    for extension in roster.extensions:
        device = extension.device
        if device in seen:
            errors.append(RowError(extension.line, "resource", _("%(device)s is already on line %(line)d") % {
                "device": device, "line": seen[device]}))
        else:
            seen[device] = extension.line
    for user in roster.users.values():
        if user.invalid & {"role", "curator"}:
            continue
        if not user.role:
            errors.append(RowError(user.line, "role", _("a role is required (admin, curator or trainee)")))
            continue
        line = user.value_lines.get("curator", user.line)
        if user.role == Role.TRAINEE and not user.curator:
            errors.append(RowError(user.line, "curator", _("a trainee needs a curator")))
        elif user.role != Role.TRAINEE and user.curator:
            errors.append(RowError(line, "curator", _("only trainees have a curator (%(name)s is %(role)s)") % {
                "name": user.username, "role": user.role}))
        elif user.curator == user.username:
            errors.append(RowError(line, "curator", _("a trainee cannot be his own curator")))
        elif user.curator in roster.users:
            named = roster.users[user.curator]
            if named.role and named.role != Role.CURATOR:
                errors.append(
                    RowError(line, "curator", _("%(name)s is a %(role)s in this file, not a curator") % {
                        "name": user.curator, "role": named.role})
                )


# --- 2. checks against the database (reads only) ---------------------------------------------------


def check_against_database(roster):
    errors = []
    in_file = roster.users
    wanted = {user.curator for user in in_file.values() if user.curator and user.curator not in in_file}
    found = {user.username: user for user in User.objects.filter(username__in=wanted)}
    for user in in_file.values():
        if not user.curator or user.curator in in_file:
            continue
        line = user.value_lines.get("curator", user.line)
        curator = found.get(user.curator)
        if curator is None:
            errors.append(RowError(line, "curator", _("no user %(name)s in this file or in the database") % {
                "name": repr(user.curator)}))
        elif curator.role != Role.CURATOR:
            errors.append(RowError(line, "curator", _("%(name)s is a %(role)s, not a curator") % {
                "name": user.curator, "role": curator.role}))

    for extension in roster.extensions:
        owner = extension.unsaved().device_owner()
        if owner is not None and owner.username != extension.username:
            errors.append(
                RowError(
                    extension.line,
                    "resource",
                    _("%(device)s already belongs to %(name)s in the database") % {
                        "device": extension.device, "name": owner.username},
                )
            )

    demoted = User.objects.filter(
        username__in=[user.username for user in in_file.values() if user.role and user.role != Role.CURATOR],
        role=Role.CURATOR,
    )
    for curator in demoted:
        stay = curator.trainees.exclude(username__in=in_file).values_list("username", flat=True)
        if stay:
            errors.append(
                RowError(
                    in_file[curator.username].line,
                    "role",
                    _("%(name)s is still the curator of %(trainees)s (not in this file); "
                      "give them another curator first") % {"name": curator.username, "trainees": ", ".join(stay)},
                )
            )
    return errors


# --- 3. applying (one transaction) -------------------------------------------------------------------


def _field_errors(exc, line, columns):
    errors = []
    for name, messages in exc.message_dict.items():
        column = name if name in columns else ""
        errors.extend(RowError(line, column, message) for message in messages)
    return errors


USER_STATE = ("first_name", "last_name", "email", "role", "curator_id", "is_staff", "password")
EXTENSION_STATE = ("user_id", "display_name", "phone_preset", "originate_context", "monitorable", "record_calls")


def _state(instance, names):
    return tuple(getattr(instance, name) for name in names)


def _apply_user(row, saved, report, errors):
    user = User.objects.filter(username=row.username).first()
    created = user is None
    before = None if created else _state(user, USER_STATE)
    if created:
        user = User(username=row.username)
    for column in ("first_name", "last_name", "email", "role"):
        if column in row.values:
            setattr(user, column, row.values[column])
    if row.curator:
        user.curator = saved.get(row.curator) or User.objects.filter(username=row.curator).first()
    else:
        user.curator = None
    if user.role == Role.ADMIN:
        user.is_staff = True  # admins keep the roster in the admin site
    try:
        user.full_clean(exclude=["password"])
        if row.password:
            validate_password(row.password, user)
    except ValidationError as exc:
        line = row.value_lines.get("password", row.line)
        if hasattr(exc, "error_dict"):
            errors.extend(_field_errors(exc, row.line, USER_COLUMNS))
        else:
            errors.extend(RowError(line, "password", message) for message in exc.messages)
        return
    if row.password and (created or not user.check_password(row.password)):
        user.set_password(row.password)
    elif created:
        user.set_unusable_password()
    user.save()
    saved[row.username] = user
    if created:
        report.users_created.append(row.username)
    elif before != _state(user, USER_STATE):
        report.users_updated.append(row.username)
    else:
        report.users_unchanged.append(row.username)


def _apply_extension(row, saved, report, errors):
    owner = saved.get(row.username)
    if owner is None:
        return  # his user row failed and is reported already
    candidate = row.unsaved()
    extension = candidate.same_device().first() or candidate
    created = extension.pk is None
    before = None if created else _state(extension, EXTENSION_STATE)
    for column, value in row.values.items():
        setattr(extension, column, value)
    extension.user = owner
    try:
        extension.full_clean()
    except ValidationError as exc:
        errors.extend(_field_errors(exc, row.line, EXTENSION_COLUMNS))
        return
    extension.save()
    device = extension.device
    if created:
        report.extensions_created.append(device)
    elif before != _state(extension, EXTENSION_STATE):
        report.extensions_updated.append(device)
    else:
        report.extensions_unchanged.append(device)


def _user_order(roster):
    """Curators and admins before the trainees who name them; a curator who becomes a trainee
    last, once the trainees he had in this file have their new curator."""
    current = dict(User.objects.filter(username__in=roster.users).values_list("username", "role"))

    def key(row):
        if row.role != Role.TRAINEE:
            return 0
        return 2 if current.get(row.username) == Role.CURATOR else 1

    return sorted(roster.users.values(), key=key)


class _DryRunRollback(Exception):
    pass


def apply_roster(roster, *, dry_run=False):
    report = ImportReport(dry_run=dry_run)
    errors = []
    try:
        with transaction.atomic():
            saved = {}
            for row in _user_order(roster):
                _apply_user(row, saved, report, errors)
            for row in roster.extensions:
                _apply_extension(row, saved, report, errors)
            if errors:
                raise RosterImportError(errors)
            if dry_run:
                raise _DryRunRollback
    except _DryRunRollback:
        pass
    return report


def import_roster(data, *, dry_run=False):
    """Validate and apply a roster file. Raises RosterImportError (nothing changed) on any problem."""
    roster, errors = parse_roster(data)
    if roster.users:
        # Even after parse errors: the rows that did parse are checked too, so one run lists all.
        errors += check_against_database(roster)
    if errors:
        raise RosterImportError(errors)
    return apply_roster(roster, dry_run=dry_run)
