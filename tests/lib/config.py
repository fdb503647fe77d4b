"""Run-time settings shared by the server's parts; /_test/config may change the mutable ones."""
from dataclasses import dataclass, field

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass
class Config:
    issuer: str = DEFAULT_ISSUER
    api_audiences: list = field(default_factory=lambda: [DEFAULT_ISSUER])
    k8s_version: str = "1.31.4"
    anonymous_auth: bool = False
    admin_token: str = ""
    loopback_token: str = ""
    loopback_uid: str = ""
    url: str = ""
    ca_pem: bytes = b""

    @property
    def minor(self):
        return int(self.k8s_version.split(".")[1])

    def jose_prefix(self):
        """go-jose's error prefix: the module path changed with 1.33."""
        return "go-jose/go-jose" if self.minor >= 33 else "square/go-jose"

    def version_info(self):
        """/version (apimachinery pkg/version Info)."""
        major, minor = self.k8s_version.split(".")[:2]
        info = {"major": major, "minor": minor}
        if self.minor >= 33:
            info.update(emulationMajor=major, emulationMinor=minor,
                        minCompatibilityMajor=major, minCompatibilityMinor=str(int(minor) - 1))
        info.update(gitVersion="v" + self.k8s_version, gitCommit="0" * 40, gitTreeState="clean",
                    buildDate="2025-01-01T00:00:00Z", goVersion="go1.23.6", compiler="gc",
                    platform="linux/amd64")
        return info
