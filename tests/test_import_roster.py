"""`manage.py import_roster`: all or nothing, every bad row reported, idempotent re-import."""

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Extension, Role, User
from accounts.roster_import import RosterImportError, import_roster

HEADER = (
    "username,first_name,last_name,email,role,curator,technology,resource,"
    "display_name,phone_preset,originate_context,monitorable,password\n"
)
GOOD = HEADER + (
    "volkova,Irina,Volkova,volkova@example.com,trainee,orlov,SIP,301,,call-info,,1,\n"
    "orlov,Pavel,Orlov,,curator,,PJSIP,302,Orlov desk,alert-info,phones,yes,Orlov-Desk-2026!\n"
    "orlov,,,,,,PJSIP,303,,none,,no,\n"
    "boss,Ivan,Main,,admin,,,,,,,,\n"
)


def run(tmp_path, text, *args, encoding="utf-8"):
    path = tmp_path / "roster.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return call_command("import_roster", str(path), *args)


def problems(text):
    data = text if isinstance(text, bytes) else text.encode()
    with pytest.raises(RosterImportError) as caught:
        import_roster(data)
    return [(error.line, error.column) for error in caught.value.errors], caught.value.errors


@pytest.mark.django_db
def test_a_good_file_creates_users_and_extensions(tmp_path, capsys):
    run(tmp_path, GOOD)
    orlov, volkova, boss = (User.objects.get(username=name) for name in ("orlov", "volkova", "boss"))
    assert (orlov.role, volkova.role, volkova.curator, boss.role, boss.is_staff) == (
        "curator",
        "trainee",
        orlov,
        "admin",
        True,
    )
    assert orlov.check_password("Orlov-Desk-2026!")
    assert not volkova.has_usable_password()  # no password in the file
    assert sorted(ext.device for ext in orlov.extensions.all()) == ["PJSIP/302", "PJSIP/303"]
    desk = Extension.objects.get(resource="302")
    assert (desk.display_name, desk.phone_preset, desk.dial_string, desk.monitorable) == (
        "Orlov desk",
        "alert-info",
        "Local/302@phones",
        True,
    )
    assert Extension.objects.get(resource="303").monitorable is False
    assert "Users: 3 created" in capsys.readouterr().out


@pytest.mark.django_db
def test_reimport_is_idempotent_and_updates(tmp_path, capsys):
    run(tmp_path, GOOD)
    capsys.readouterr()
    run(tmp_path, GOOD)
    assert "Users: 0 created, 0 updated, 3 unchanged. Extensions: 0 created, 0 updated, 3 unchanged." in capsys.readouterr().out
    run(tmp_path, GOOD.replace("Irina,Volkova", "Irina,Volkova-Orlova").replace(",none,,no,", ",call-info,,no,"))
    assert User.objects.get(username="volkova").last_name == "Volkova-Orlova"
    assert Extension.objects.get(resource="303").phone_preset == "call-info"
    assert "Users: 0 created, 1 updated, 2 unchanged. Extensions: 0 created, 1 updated" in capsys.readouterr().out
    assert User.objects.count() == 3 and Extension.objects.count() == 3


@pytest.mark.django_db
def test_existing_users_are_updated_and_curators_may_live_in_the_database(tmp_path, demo_roster):
    run(tmp_path, "username,role,curator,technology,resource\nivanov,trainee,smirnov,SIP,106\nnew1,trainee,petrova,,\n")
    ivanov = User.objects.get(username="ivanov")
    assert ivanov.curator.username == "smirnov"
    assert sorted(ext.device for ext in ivanov.extensions.all()) == ["SIP/101", "SIP/106"]  # never deletes
    assert ivanov.check_password("demo-ivanov")  # no password column: unchanged
    assert User.objects.get(username="new1").curator.username == "petrova"


@pytest.mark.django_db
def test_curators_may_come_after_their_trainees_and_files_may_be_reordered(tmp_path):
    lines = GOOD.splitlines()
    run(tmp_path, "\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    assert User.objects.get(username="volkova").curator.username == "orlov"


@pytest.mark.django_db
def test_a_curator_may_become_a_trainee_when_his_trainees_move_in_the_same_file(tmp_path, demo_roster):
    text = (
        "username,role,curator\n"
        "smirnov,trainee,petrova\n"
        "popova,trainee,petrova\n"
        "lebedev,trainee,petrova\n"
    )
    run(tmp_path, text)
    assert User.objects.get(username="smirnov").curator.username == "petrova"
    assert [g.name for g in User.objects.get(username="smirnov").groups.all()] == ["Trainees"]


@pytest.mark.django_db
def test_dry_run_changes_nothing(tmp_path, capsys):
    run(tmp_path, GOOD, "--dry-run")
    assert "dry run, nothing saved" in capsys.readouterr().out
    assert not User.objects.exists() and not Extension.objects.exists()


@pytest.mark.django_db
def test_bom_crlf_mixed_case_and_semicolons_are_understood(tmp_path):
    text = "\ufeffUsername;Role;Curator;Technology;Resource\r\nlead;Curator;;sip;400\r\nnew;TRAINEE;lead;pjsip;401\r\n"
    run(tmp_path, text)
    assert User.objects.get(username="new").curator.username == "lead"
    assert {ext.device for ext in Extension.objects.all()} == {"SIP/400", "PJSIP/401"}


@pytest.mark.django_db
def test_a_bad_file_reports_every_bad_row_and_changes_nothing(tmp_path, demo_roster, capsys):
    text = HEADER + (
        "ok1,A,B,,trainee,petrova,SIP,301,,,,,\n"  # fine on its own
        "bad1,A,B,,trainee,,SIP,302,,,,,\n"  # trainee without curator
        "bad2,A,B,,boss,,SIP,303,,,,,\n"  # bad role
        "bad3,A,B,,trainee,ghost,SIP,304,,,,,\n"  # unknown curator
        "bad4,A,B,,trainee,ivanov,SIP,305,,,,,\n"  # curator is a trainee
        "bad5,A,B,,trainee,petrova,SIP,301,,,,,\n"  # device twice in the file
        "bad6,A,B,,trainee,petrova,SIP,104,,,,,\n"  # device of popova in the database
        "bad7,A,B,,trainee,petrova,SIP,\"30,7\",,,,,\n"  # injection attempt
        "bad8,A,B,not-an-email,trainee,petrova,Skype,308,,fancy,,maybe,\n"  # several bad cells
        "bad9,A,B,,curator,petrova,,,,,,,\n"  # a curator with a curator
    )
    with pytest.raises(CommandError, match="problems found; nothing was changed"):
        run(tmp_path, text)
    err = capsys.readouterr().err
    expected = [
        "line 3, column curator: a trainee needs a curator",
        "line 4, column role: 'boss' is not a role",
        "line 5, column curator: no user 'ghost' in this file or in the database",
        "line 6, column curator: ivanov is a trainee, not a curator",
        "line 7, column resource: SIP/301 is already on line 2",
        "line 8, column resource: SIP/104 already belongs to popova in the database",
        "line 9, column resource: may not contain a comma",
        "line 10, column email: Enter a valid email address.",
        "line 10, column technology: 'Skype' is not a channel technology",
        "line 10, column phone_preset: 'fancy' is not a phone preset",
        "line 10, column monitorable: 'maybe' is not yes/no",
        "line 11, column curator: only trainees have a curator",
    ]
    for message in expected:
        assert f"roster.csv: {message}" in err
    assert not User.objects.filter(username__in=["ok1", "bad1"]).exists()
    assert Extension.objects.count() == 8


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text,where,why",
    [
        (b"", (0, ""), "the file is empty"),
        (b"\xef\xbb\xbf\r\n  \r\n", (0, ""), "the file is empty"),
        (b"username,role\n", (0, ""), "the file has a header but no rows"),
        (b"username,role\nivan,trainee\nolga,curator\xe9\n", (3, ""), "not UTF-8 text (byte 0xe9)"),
        ("username,role\nivan,curator\n".encode("utf-16"), (0, ""), "the file is UTF-16"),
        (b"username,role,phone\nivan,curator,1\n", (1, "phone"), "unknown column 'phone'"),
        (b"username,technology,resource\nivan,SIP,1\n", (1, "role"), "this column is missing (required)"),
        (b"role,technology,resource\ncurator,SIP,1\n", (1, "username"), "this column is missing (required)"),
        (b"username,role,resource\nivan,curator,1\n", (1, "technology"), "this column is missing (needed with resource)"),
        (b"username,role,role\nivan,curator,curator\n", (1, "role"), "this column appears twice"),
        (b"username,role\nivan,curator,extra\n", (2, ""), "has 3 fields, the header has 2"),
        (b"username,role\nivan\n", (2, ""), "has 1 field, the header has 2"),
        (b'username,role\n"ivan,curator\n', (2, ""), "not readable as CSV"),
        (b"username,role\n,curator\n", (2, "username"), "a username is required"),
        (b"username,role\nivan ivanov,curator\n", (2, "username"), "Enter a valid username"),
        (b"username,role\nivan,\n", (2, "role"), "a role is required"),
        (b"username,role,technology,resource\nivan,curator,,5\n", (2, "technology"), "required when the row has an extension"),
        (b"username,role,technology,resource\nivan,curator,Local,5\n", (2, "originate_context"), "needs its context"),
        (b"username,role,resource,technology,display_name\nivan,curator,,,Desk\n", (2, "display_name"), "no technology and resource"),
        (b"username,role,first_name\nivan,curator,Ivan\nivan,curator,Ioann\n", (3, "first_name"), "conflicts with 'Ivan' on line 2"),
        (b"username,role\nivan,curator\nivan,trainee\n", (3, "role"), "conflicts with 'curator' on line 2"),
        (b"username,role,password\nivan,curator,one-Good-pass-1\nivan,curator,two-Good-pass-2\n", (3, "password"), "differs from the password on line 2"),
        (b"username,role,curator\nivan,trainee,ivan\n", (2, "curator"), "cannot be his own curator"),
        (b"username,role,curator\nivan,trainee,olga\nolga,admin,\n", (2, "curator"), "olga is a admin in this file, not a curator"),
        (b"username,role,password\nivan,curator,123\n", (2, "password"), "too short"),
    ],
)
def test_each_bad_file_is_explained(db, text, where, why):
    found, errors = problems(text)
    assert where in found, [str(error) for error in errors]
    assert any(why in error.message for error in errors if (error.line, error.column) == where)
    assert not User.objects.exists()


@pytest.mark.django_db
def test_a_demoted_curator_keeping_trainees_outside_the_file_is_refused(demo_roster):
    found, errors = problems("username,role,curator\nsmirnov,trainee,petrova\n")
    assert found == [(2, "role")]
    assert "still the curator of lebedev, popova" in errors[0].message
    assert User.objects.get(username="smirnov").role == Role.CURATOR


@pytest.mark.django_db
def test_a_trainee_may_be_promoted_and_get_trainees_in_the_same_file(tmp_path, demo_roster):
    run(tmp_path, "username,role,curator\nnew,trainee,ivanov\nivanov,curator,\n")
    assert User.objects.get(username="new").curator.username == "ivanov"
    assert User.objects.get(username="ivanov").role == Role.CURATOR


@pytest.mark.django_db
def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_roster", str(tmp_path / "nope.csv"))
