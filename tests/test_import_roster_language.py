"""The roster importer's problems in the reader's language: the admin's preview in the admin
page's, the command in LANGUAGE_CODE or its --language."""

import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from accounts.models import Role, User

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

IMPORT = "/admin/accounts/user/import/"
BAD = b"username,role,curator,technology,resource\nnova,trainee,ghost,SIP,300\nivanov,curator,petrova,,\nx,boss,,FAX,1\n"


def preview_problems(client, language):
    client.cookies["django_language"] = language
    response = client.post(IMPORT, {"file": SimpleUploadedFile("bad.csv", BAD, content_type="text/csv")})
    assert response.status_code == 200
    return [str(problem) for problem in response.context["problems"]], html.unescape(response.content.decode())


def test_the_admin_preview_in_russian_says_every_problem_in_russian(admin_client, demo_roster):
    problems, page = preview_problems(admin_client, "ru")
    assert problems == [
        "строка 2, столбец curator: пользователя 'ghost' нет ни в этом файле, ни в базе",
        "строка 3, столбец curator: куратор бывает только у стажёров (у ivanov роль curator)",
        "строка 4, столбец role: 'boss' — не роль (допустимы: admin, curator, trainee)",
        "строка 4, столбец technology: 'FAX' — не технология канала (допустимы: SIP, PJSIP, IAX2, DAHDI, Local)",
    ]
    assert all(problem in page for problem in problems)
    assert not User.objects.filter(username="nova").exists()


def test_the_same_file_in_english(admin_client, demo_roster):
    problems, _page = preview_problems(admin_client, "en")
    assert problems[0] == "line 2, column curator: no user 'ghost' in this file or in the database"
    assert problems[2] == "line 4, column role: 'boss' is not a role (one of: admin, curator, trainee)"


def test_the_command_speaks_the_language_asked_for(tmp_path, capsys, demo_roster):
    path = tmp_path / "bad.csv"
    path.write_bytes(BAD)
    with pytest.raises(CommandError, match="найдено 4 ошибки; ничего не изменено"):
        call_command("import_roster", str(path), language="ru")
    assert "bad.csv: строка 2, столбец curator: пользователя 'ghost' нет" in capsys.readouterr().err

    good = tmp_path / "good.csv"
    good.write_bytes(b"username,role\nnew_admin,admin\n")
    call_command("import_roster", str(good), "--dry-run", "--language", "ru")
    assert "Пользователи: будет создано 1" in capsys.readouterr().out
    assert User.objects.filter(role=Role.ADMIN, username="new_admin").count() == 0


def test_the_command_speaks_language_code_by_default(tmp_path, capsys, demo_roster, settings):
    settings.LANGUAGE_CODE = "ru"
    path = tmp_path / "bad.csv"
    path.write_bytes(b"username,role\n")
    with pytest.raises(CommandError, match="найдена 1 ошибка"):
        call_command("import_roster", str(path))
    assert "файл: в файле есть заголовок, но нет ни одной строки" in capsys.readouterr().err
