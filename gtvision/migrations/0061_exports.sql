-- Exports (POST /cameras/{id}/exports): one MP4 joined from recording segments, stored in the
-- object store. The retention purger deletes them with their camera's retention_days, like the
-- recordings they copy.
CREATE TABLE exports (
    id           text PRIMARY KEY,
    city_id      bigint NOT NULL,
    camera_id    bigint NOT NULL,
    user_id      bigint,
    range_start  timestamptz NOT NULL,
    range_end    timestamptz NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL,
    segments     integer NOT NULL,
    object_key   text NOT NULL,
    bytes        bigint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exports_camera_created ON exports (camera_id, created_at DESC);
CREATE INDEX exports_ended ON exports (ended_at);
