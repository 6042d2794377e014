-- gtvision initial schema. Times are timestamptz (UTC on the wire); ids of events are the
-- deterministic UUID5 of gtvision.events, so re-emitted events are absorbed by ON CONFLICT.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE cities (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    timezone    text NOT NULL DEFAULT 'America/Sao_Paulo',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE,
    password_hash  text NOT NULL,
    role           text NOT NULL
                   CHECK (role IN ('admin', 'city_admin', 'operator', 'analyst', 'viewer')),
    city_id        bigint REFERENCES cities (id) ON DELETE CASCADE,
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (role = 'admin' OR city_id IS NOT NULL)
);
CREATE INDEX users_city ON users (city_id);

CREATE TABLE cameras (
    id               bigserial PRIMARY KEY,
    city_id          bigint NOT NULL REFERENCES cities (id) ON DELETE CASCADE,
    name             text NOT NULL,
    stream_url       text NOT NULL CHECK (stream_url ~ '^rtsps?://'),
    enabled          boolean NOT NULL DEFAULT true,
    lpr_enabled      boolean NOT NULL DEFAULT true,
    lpr_dedicated    boolean NOT NULL DEFAULT false,
    motion_enabled   boolean NOT NULL DEFAULT true,
    analysis_fps     real NOT NULL DEFAULT 5 CHECK (analysis_fps > 0),
    keyframes_only   boolean NOT NULL DEFAULT false,
    motion_settings  jsonb NOT NULL DEFAULT '{}'::jsonb,
    masks            jsonb NOT NULL DEFAULT '[]'::jsonb,
    zones            jsonb NOT NULL DEFAULT '[]'::jsonb,
    retention_days   integer NOT NULL DEFAULT 30 CHECK (retention_days > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (city_id, name)
);

-- No foreign keys on city/camera: events outlive cameras until retention erases them,
-- and replays may carry cameras that were never registered.
CREATE TABLE events (
    id          uuid PRIMARY KEY,
    type        text NOT NULL,
    city_id     bigint NOT NULL,
    camera_id   bigint NOT NULL,
    ts          timestamptz NOT NULL,
    plate       text,
    confidence  real,
    payload     jsonb NOT NULL,
    crop_key    text,
    clip_key    text,
    stream_id   text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_city_ts ON events (city_id, ts DESC, id DESC);
CREATE INDEX events_city_type_ts ON events (city_id, type, ts DESC, id DESC);
CREATE INDEX events_camera_ts ON events (camera_id, ts DESC);
CREATE INDEX events_city_plate ON events (city_id, plate) WHERE plate IS NOT NULL;
CREATE INDEX events_plate_trgm ON events USING gin (plate gin_trgm_ops) WHERE plate IS NOT NULL;

CREATE TABLE alert_acks (
    event_id  uuid PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    user_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    username  text NOT NULL,
    acked_at  timestamptz NOT NULL DEFAULT now(),
    note      text NOT NULL DEFAULT ''
);

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    routing_key  text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    ts        timestamptz NOT NULL DEFAULT now(),
    user_id   bigint,
    username  text NOT NULL DEFAULT '',
    city_id   bigint,
    action    text NOT NULL,
    target    text NOT NULL DEFAULT '',
    detail    jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip        text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_ts ON audit_log (ts DESC, id DESC);
CREATE INDEX audit_log_city_ts ON audit_log (city_id, ts DESC);

CREATE TABLE hotlists (
    id            bigserial PRIMARY KEY,
    city_id       bigint NOT NULL REFERENCES cities (id) ON DELETE CASCADE,
    pattern       text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('exact', 'wildcard', 'fuzzy')),
    max_distance  real NOT NULL DEFAULT 1 CHECK (max_distance >= 0),
    priority      integer NOT NULL DEFAULT 0,
    reason        text NOT NULL DEFAULT '',
    expires_at    timestamptz,
    created_by    bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hotlists_city ON hotlists (city_id);

CREATE TABLE recordings (
    id          text PRIMARY KEY,
    city_id     bigint NOT NULL,
    camera_id   bigint NOT NULL,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    object_key  text,
    bytes       bigint,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recordings_camera_started ON recordings (camera_id, started_at DESC);
CREATE INDEX recordings_city_started ON recordings (city_id, started_at DESC);
