"""Settings of the gateway (env prefix ``GATEWAY_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.collection.layout import IMAGES_DIR, default_snapshot_dir
from services.common.settings import ServiceSettings, port_field
from services.common.topology import facts

_SERVICE = facts("gateway")


class GatewaySettings(ServiceSettings):
    """Gateway settings."""

    model_config = SettingsConfigDict(env_prefix=_SERVICE.env_prefix)

    port: int = port_field(_SERVICE)
    """TCP port to listen on."""
    embeddings_url: str = facts("embeddings").url()
    """Base URL of the embeddings service."""
    search_url: str = facts("search").url()
    """Base URL of the search service."""
    geometric_url: str = facts("geometric").url()
    """Base URL of the geometric service."""
    snapshot_dir: Path = Field(default_factory=default_snapshot_dir)
    """Collection snapshot directory; reference images live in its ``images/`` folder and the fitted decision in
    ``decision.json``."""
    images_dir: Path | None = None
    """Reference image folder; None means ``<snapshot_dir>/images``."""
    api_key: SecretStr | None = None
    """Key for the admin endpoints (``X-API-Key``); unset disables them (403)."""
    api_key_file: Path | None = None
    """File holding the admin key instead (a mounted secret); read once at start-up, white space trimmed."""
    embeddings_timeout_s: float = Field(default=10.0, gt=0)
    """Timeout of one call to the embeddings service, seconds."""
    search_timeout_s: float = Field(default=3.0, gt=0)
    """Timeout of one call to the search service, seconds."""
    geometric_timeout_s: float = Field(default=5.0, gt=0)
    """Timeout of one call to the geometric service, seconds."""
    retries: int = Field(default=2, ge=0, le=5)
    """Extra attempts for idempotent backend calls that failed on the backend's side."""
    query_max_side: int = Field(default=1024, ge=128, le=4096)
    """Photos are downscaled to this longest side, pixels, before they are sent to the backends."""
    max_regions: int = Field(default=4, ge=1, le=8)
    """Regions of a photo embedded, the whole photo first (``regions.py``: located paintings, then fixed views);
    each costs the embeddings service a pass of its model. Four instead of eight gave the same figures on every
    dev and simulated set (the local-feature votes find what the other views used to) with half the embedding CPU:
    6.9-7.2 instead of 5.8-6.3 photos/s at concurrency 8 on two cores; two lost an estense-dev painting."""
    default_k: int = Field(default=5, ge=1, le=100)
    """Candidates verified per photo when the request does not say."""
    fine_candidates: int = Field(default=0, ge=0, le=100)
    """The best this many candidates that do not verify are tried again on finer query features (1024 px, 3000
    keypoints): small paintings on wall photos. 0 turns the second try off."""
    shortlist: int = Field(default=10, ge=0, le=100)
    """References the photo's local features vote for (over the whole collection) that are verified besides the
    embedding's ``default_k``: paintings that are small, dark or glare-washed in the photo are often missing from
    the embedding's candidates; 0 turns the local-feature shortlist off."""
    painting_looks: int = Field(default=2, ge=0, le=8)
    """Located paintings (framed quadrilaterals the geometric service finds in the photo) that no verified answer
    covers and that are looked at closer: rectified at a higher resolution and verified against the references
    their own features vote for. Small and far paintings, and those the photo's edge cuts, are lost on the whole
    photo; 0 turns it off."""
    painting_shortlist: int = Field(default=4, ge=0, le=20)
    """References verified per closer look: the ones its features vote for most."""
    painting_max_area: float = Field(default=0.35, gt=0.0, le=1.0)
    """Located paintings larger than this share of the photo are not looked at closer: the whole photo's features
    describe them well enough."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed by CORS (``scheme://host[:port]``); empty disables CORS."""
    cors_allow_credentials: bool = False
    """Let browsers send cookies or auth headers cross-origin; refused together with the origin ``*``."""
    rate_limit_per_minute: int = Field(default=600, ge=0)
    """``/identify`` requests a minute per client address (token bucket); 0 turns limiting off. Sized for a
    museum's visitors behind one guest Wi-Fi address (above what one gateway answers a minute); the WAF's rate rule
    is the edge limit in production."""
    rate_limit_burst: int = Field(default=200, ge=1)
    """``/identify`` requests a client address may send at once after being idle."""
    max_in_flight: int = Field(default=32, ge=0, le=10_000)
    """``/identify`` requests answered at once; one more gets 503 ``overloaded`` with ``Retry-After`` at once instead
    of queueing behind the others until it times out. 0 turns the bound off."""
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5)
    """Proxies in front of the gateway (an ALB: 1) whose ``X-Forwarded-For`` entry names the client; 0: the
    socket peer is the client."""
    breaker_failures: int = Field(default=5, ge=1)
    """Consecutive failed calls (5xx, timeout, refused) after which a backend's circuit opens."""
    breaker_reset_s: float = Field(default=5.0, gt=0)
    """Seconds an open circuit answers 503 at once before one probe call may try the backend again."""

    @property
    def reference_images_dir(self) -> Path:
        """Where reference images are read from and written to."""
        return self.images_dir or (self.snapshot_dir / IMAGES_DIR)
