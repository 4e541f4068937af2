"""Package discovery that pyproject.toml cannot say on its own (the rest of the build is there).

Every package under src/ is found, the data folders (templates/, static/, fonts/, data/) among
them, so their files ship and setuptools has no "package would be ignored" to warn about; the
top-level migrations/ is added by name, since it ships inside the package as
`vssid_broker.migrations` (pyproject.toml maps it) and `find` only sees what is under src/.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages("src", include=["vssid_broker*"], exclude=["*.__pycache__"]),
        "vssid_broker.migrations",
        "vssid_broker.migrations.versions",
    ]
)
