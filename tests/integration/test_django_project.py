"""Django done right (#14): a ``django-admin startproject`` project, changed only as docs say.

Each project is made by the real ``django-admin startproject`` in a temporary directory,
then given exactly the blocks of docs/frameworks.md for its recipe (read from the docs, so
the docs cannot drift from what is tested). Everything Django runs in its own processes:
``manage.py``, ``runserver`` (WSGI) and uvicorn (ASGI) on free loopback ports, and the
scenarios of django_driver.py (the test ``Client`` and ``AsyncClient``), since Django's
settings belong to a process.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ..servers import LOOPBACK, ServerProcess, free_port, redis_server

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs" / "frameworks.md"
DRIVER = Path(__file__).with_name("django_driver.py")
USER, PASSWORD = "admin", "a-long-test-password"


def doc_block(first_line: str) -> str:
    """The Python block of docs/frameworks.md that starts with ``first_line``."""
    for block in re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"docs/frameworks.md has no block starting {first_line!r}")


@dataclass
class Project:
    root: Path
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=self.root, env=self.env, capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("manage.py", *args)

    def driver(self, *args: str) -> None:
        done = self.run(DRIVER.name, *args)
        assert 0 == done.returncode, done.stdout + done.stderr
        assert f"ok {args[0]}" in done.stdout

    def serve(self, kind: str) -> ServerProcess:
        port = free_port()
        prefixes = ("SECRET", "ASGI", "DJANGO_DEBUG")
        env = [f"{k}={v}" for k, v in self.env.items() if k.startswith(prefixes)]
        if kind == "runserver":
            command = ["manage.py", "runserver", "--noreload", f"{LOOPBACK}:{port}"]
        else:
            command = ["-m", "uvicorn", "mysite.asgi:application", "--host", LOOPBACK,
                       "--port", str(port)]  # fmt: skip
        argv = ["env", *env, sys.executable, *command]
        return ServerProcess(argv, port, cwd=self.root).start()


def make_project(root: Path, recipe: int, store: str | None = None, extra: str = "") -> Project:
    """``django-admin startproject``, the docs' blocks for ``recipe``, migrate, a superuser;
    ``extra``: more settings the test needs (not the docs')."""
    django_admin = shutil.which("django-admin", path=str(Path(sys.executable).parent))
    assert django_admin is not None
    subprocess.run([django_admin, "startproject", "mysite", str(root)], check=True)
    with (root / "mysite" / "settings.py").open("a") as settings:
        settings.write("\n" + doc_block(f"# settings.py, recipe {recipe}"))
        if store is not None:  # the documented ASGISESSION_STORE setting
            settings.write(f"ASGISESSION_STORE = {store!r}\n")
        settings.write(extra)
    if recipe == 2:
        with (root / "mysite" / "asgi.py").open("a") as asgi:
            asgi.write("\n" + doc_block("# asgi.py, recipe 2"))
    shutil.copy(DRIVER, root / DRIVER.name)
    env = {**os.environ, "SECRET_KEY_BASE": secrets.token_hex(32)}
    env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    project = Project(root, env)
    for args in (("migrate",), ("createsuperuser", "--noinput", "--username", USER,
                                "--email", "admin@example.com")):  # fmt: skip
        done = project.manage(*args)
        assert 0 == done.returncode, done.stdout + done.stderr
    return project


@pytest.fixture(scope="module")
def recipe1(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project with Django's CSRF (recipe 1), sessions in the cookie."""
    return make_project(tmp_path_factory.mktemp("recipe1"), 1)


@pytest.fixture(scope="module")
def recipe2(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project with asgisession's CSRF (recipe 2)."""
    return make_project(tmp_path_factory.mktemp("recipe2"), 2)


@pytest.fixture(scope="module")
def recipe1_redis(tmp_path_factory: pytest.TempPathFactory, redis_proc: ServerProcess) -> Project:
    """Recipe 1 with ``ASGISESSION_STORE`` a real Redis: an asyncio client under WSGI."""
    url = f"redis://{LOOPBACK}:{redis_proc.port}/0"
    return make_project(tmp_path_factory.mktemp("recipe1redis"), 1, url)


@pytest.fixture
def runserver(recipe1: Project) -> Iterator[ServerProcess]:
    server = recipe1.serve("runserver")
    yield server
    server.stop()


@pytest.mark.parametrize("recipe", ["recipe1", "recipe2"])
def test_check_and_migrate_pass(recipe: str, request: pytest.FixtureRequest) -> None:
    """Before the engine, ``check`` stopped at admin.E410 (no Django SessionMiddleware)."""
    project: Project = request.getfixturevalue(recipe)
    done = project.manage("check")
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "no issues" in done.stdout
    done = project.manage("migrate")
    assert 0 == done.returncode, done.stdout + done.stderr


def admin_login(client: httpx.Client) -> httpx.Response:
    """Log in through the admin's own form, as a browser would."""
    page = client.get("/admin/login/?next=/admin/")
    assert 200 == page.status_code
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match
    form = {"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": match.group(1)}
    return client.post("/admin/login/?next=/admin/", data=form)


def base(server: ServerProcess) -> str:
    return f"http://{LOOPBACK}:{server.port}"


def test_admin_logs_in_under_runserver(runserver: ServerProcess) -> None:
    with httpx.Client(base_url=base(runserver)) as client:
        assert 302 == client.get("/admin/").status_code
        response = admin_login(client)
        assert 302 == response.status_code, response.text
        assert "/admin/" == response.headers["location"]
        page = client.get("/admin/")
        assert 200 == page.status_code
        assert "Site administration" in page.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token
        out = client.post("/admin/logout/", data={"csrfmiddlewaretoken": token.group(1)})
        assert 200 == out.status_code
        assert 302 == client.get("/admin/").status_code


@pytest.mark.parametrize("recipe", ["recipe1", "recipe1_redis"])
def test_session_crosses_wsgi_and_asgi(recipe: str, request: pytest.FixtureRequest) -> None:
    """Logged in through runserver, the session is read by uvicorn; and the other way."""
    project: Project = request.getfixturevalue(recipe)
    wsgi, asgi = project.serve("runserver"), project.serve("uvicorn")
    try:
        for first, second in ((wsgi, asgi), (asgi, wsgi)):
            with httpx.Client(base_url=base(first)) as client:
                assert 302 == admin_login(client).status_code
                cookie = client.cookies["sessionid"]
            with httpx.Client(base_url=base(second), cookies={"sessionid": cookie}) as other:
                page = other.get("/admin/")
                assert 200 == page.status_code
                assert "Site administration" in page.text
    finally:
        wsgi.stop()
        asgi.stop()


def test_test_clients_auth_and_messages(recipe1: Project) -> None:
    recipe1.driver("clients")


def test_test_clients_with_a_redis_store(recipe1_redis: Project) -> None:
    recipe1_redis.driver("clients")


def test_set_expiry(recipe1: Project) -> None:
    recipe1.driver("expiry")


@pytest.mark.parametrize("store", ["cookie", "sqlite", "redis", "memcached"])
def test_asgisession_middleware_reads_the_engines_sessions(
    recipe1: Project,
    store: str,
    redis_proc: ServerProcess,
    memcached_proc: ServerProcess,
    tmp_path: Path,
) -> None:
    """Same secret, cookie name and store: one format, read and written by either side."""
    urls = {
        "cookie": "cookie",
        "sqlite": f"sqlite:///{tmp_path / 'sessions.db'}",
        "redis": f"redis://{LOOPBACK}:{redis_proc.port}/1",
        "memcached": f"memcached://{LOOPBACK}:{memcached_proc.port}",
    }
    recipe1.driver("interop", urls[store])


@pytest.mark.parametrize("store", ["cookie", "redis"])
def test_set_expiry_crosses_between_engine_and_middleware(
    recipe1: Project, store: str, redis_proc: ServerProcess
) -> None:
    """Browser-close and a chosen lifetime, both ways: Django's ``_session_expiry`` and the
    core's ``_expiry`` say the same, whichever side chose last."""
    url = "cookie" if store == "cookie" else f"redis://{LOOPBACK}:{redis_proc.port}/3"
    recipe1.driver("expiry_crossing", url)


def test_log_out_everywhere_with_redis(recipe1: Project, redis_proc: ServerProcess) -> None:
    """``ASGISESSION_USER_KEY``: the user's sessions are indexed; ``revoke_user`` ends them."""
    recipe1.driver("revoke", f"redis://{LOOPBACK}:{redis_proc.port}/4")


def test_rotation_overflow_and_no_resurrection(recipe1: Project, tmp_path: Path) -> None:
    recipe1.driver("edges", f"sqlite:///{tmp_path / 'sessions.db'}")


def test_recipe2_admin_logs_in_through_asgisession_csrf(recipe2: Project) -> None:
    """Under uvicorn: asgisession's token in ``csrfmiddlewaretoken``, Django's check agrees."""
    server = recipe2.serve("uvicorn")
    try:
        with httpx.Client(base_url=base(server)) as client:
            page = client.get("/admin/login/?next=/admin/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert token
            assert 86 == len(token.group(1))  # asgisession's masked token, not Django's 64
            form = {"username": USER, "password": PASSWORD}
            refused = client.post("/admin/login/?next=/admin/", data=form)
            assert 403 == refused.status_code  # asgisession's CSRF: no token
            assert "Forbidden" in refused.text
            response = admin_login(client)
            assert 302 == response.status_code, response.text
            page = client.get("/admin/")
            assert 200 == page.status_code
            assert {"session", "sessionid"} <= set(client.cookies.keys())
            # Login renewed asgisession's CSRF secret: the login page's token stops working.
            stale = {"csrfmiddlewaretoken": token.group(1)}
            assert 403 == client.post("/admin/logout/", data=stale).status_code
            fresh = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert fresh
            out = client.post("/admin/logout/", data={"csrfmiddlewaretoken": fresh.group(1)})
            assert 200 == out.status_code
            assert 302 == client.get("/admin/").status_code
    finally:
        server.stop()


def test_recipe2_runserver_keeps_djangos_csrf(recipe2: Project) -> None:
    """Under WSGI (no asgisession CSRF) Django's token and check are the ones in force."""
    server = recipe2.serve("runserver")
    try:
        with httpx.Client(base_url=base(server)) as client:
            page = client.get("/admin/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert token
            assert 64 == len(token.group(1))  # Django's
            form = {"username": USER, "password": PASSWORD}
            assert 403 == client.post("/admin/login/", data=form).status_code
            assert 302 == admin_login(client).status_code
            assert 200 == client.get("/admin/").status_code
    finally:
        server.stop()


@pytest.fixture(scope="module")
def outage_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A Redis of its own, which the outage tests stop and start again."""
    server = redis_server(tmp_path_factory.mktemp("outage-redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def recipe1_outage(
    tmp_path_factory: pytest.TempPathFactory, outage_redis: ServerProcess
) -> Project:
    """Recipe 1 on that Redis; ``DJANGO_DEBUG=0`` in the environment turns DEBUG off."""
    debug = (
        "DEBUG = os.environ.get('DJANGO_DEBUG', '1') == '1'\n"
        "ALLOWED_HOSTS = ['127.0.0.1', 'localhost', 'testserver']\n"
    )
    url = f"redis://{LOOPBACK}:{outage_redis.port}/0"
    return make_project(tmp_path_factory.mktemp("recipe1outage"), 1, url, debug)


def down_url(store: str, tmp_path: Path) -> str:
    """A store that fails: a Redis stopped, or a SQLite "file" that cannot be opened."""
    if store == "sqlite":
        return f"sqlite:///{tmp_path}"  # a directory: sqlite3 cannot open it
    stopped = redis_server(tmp_path)
    stopped.stop()
    return f"redis://{LOOPBACK}:{stopped.port}/0"


@pytest.mark.parametrize("store", ["redis", "sqlite"])
def test_store_outage_is_503_with_the_test_clients(
    recipe1: Project, store: str, outage_redis: ServerProcess, tmp_path: Path
) -> None:
    """Before django_middleware: Django's 500, and the test Client raised StoreUnavailable."""
    live = {
        "redis": f"redis://{LOOPBACK}:{outage_redis.port}/2",
        "sqlite": f"sqlite:///{tmp_path / 'sessions.db'}",
    }[store]
    recipe1.driver("outage", live, down_url(store, tmp_path))


def test_commit_errors_are_djangos_500_or_the_hook(recipe1: Project) -> None:
    recipe1.driver("commit_errors")


@pytest.mark.parametrize("kind", ["runserver", "uvicorn"])
@pytest.mark.parametrize("debug", ["1", "0"])
def test_store_outage_is_503_served(
    recipe1_outage: Project, outage_redis: ServerProcess, kind: str, debug: str
) -> None:
    """Logged in to the admin, Redis stopped: the admin's next page is a 503, not a 500."""
    recipe1_outage.env["DJANGO_DEBUG"] = debug
    server = recipe1_outage.serve(kind)
    try:
        with httpx.Client(base_url=base(server)) as client:
            assert 302 == admin_login(client).status_code
            cookie = client.cookies["sessionid"]
            outage_redis.stop()
            try:
                response = client.get("/admin/")
                assert 503 == response.status_code, response.text[:500]
                assert "5" == response.headers["retry-after"]
                assert "set-cookie" not in response.headers
                assert "session store" in response.text
            finally:
                outage_redis.start()
            assert cookie == client.cookies["sessionid"]
    finally:
        server.stop()
