"""Login and logout; every app page needs a logged-in user."""

import pytest


@pytest.mark.django_db
def test_anonymous_dashboard_redirects_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == "/login/?next=/"


@pytest.mark.django_db
def test_login_page_renders(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert 'name="username"' in response.content.decode()


@pytest.mark.django_db
def test_demo_curator_logs_in_and_sees_the_dashboard(client, demo_roster):
    response = client.post("/login/", {"username": "petrova", "password": demo_roster.passwords["petrova"]})
    assert response.status_code == 302 and response.url == "/"
    response = client.get("/")
    assert response.status_code == 200
    assert response.wsgi_request.user.username == "petrova"


@pytest.mark.django_db
def test_wrong_password_is_refused(client, demo_roster):
    response = client.post("/login/", {"username": "petrova", "password": "wrong"})
    assert response.status_code == 200
    assert "Wrong user name or password." in response.content.decode()
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_an_imported_user_without_password_cannot_log_in(client, demo_roster):
    from accounts.roster_import import import_roster

    import_roster(b"username,role,curator\nnopass,trainee,petrova\n")
    response = client.post("/login/", {"username": "nopass", "password": ""})
    assert response.status_code == 200
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_inactive_user_cannot_log_in(client, demo_roster):
    demo_roster.users["ivanov"].__class__.objects.filter(username="ivanov").update(is_active=False)
    response = client.post("/login/", {"username": "ivanov", "password": demo_roster.passwords["ivanov"]})
    assert response.status_code == 200


@pytest.mark.django_db
def test_logout_is_a_post_and_ends_the_session(client, demo_roster):
    client.force_login(demo_roster.users["petrova"])
    assert client.get("/logout/").status_code == 405  # a link or image cannot log anyone out
    assert client.get("/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302 and response.url == "/login/"
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_login_ignores_an_offsite_next(client, demo_roster):
    response = client.post(
        "/login/", {"username": "petrova", "password": demo_roster.passwords["petrova"], "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response.url == "/"
