-- What the operator console needs from the schema (issue 17).
--
-- alert_ack_log: the acknowledgement history of an alert. alert_acks keeps the state (the first
-- acknowledgement wins, as before); every acknowledgement and every later note is a row here,
-- with who and when. Erasing an event (retention, LGPD) removes its history with it.
CREATE TABLE alert_ack_log (
    id        bigserial PRIMARY KEY,
    event_id  uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    city_id   bigint NOT NULL,
    user_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    username  text NOT NULL,
    action    text NOT NULL CHECK (action IN ('ack', 'note')),
    note      text NOT NULL DEFAULT '',
    ts        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_ack_log_event ON alert_ack_log (event_id, id);

INSERT INTO alert_ack_log (event_id, city_id, user_id, username, action, note, ts)
SELECT a.event_id, e.city_id, a.user_id, a.username, 'ack', a.note, a.acked_at
FROM alert_acks a JOIN events e ON e.id = a.event_id;

-- True totals of a city's alerts (the unacknowledged count is an anti-join on alert_acks).
CREATE INDEX events_city_alerts ON events (city_id, ts DESC, id DESC)
    WHERE type = 'alert.triggered';

-- The last health event of each camera (camera wall: online / offline / stalled).
CREATE INDEX events_camera_health ON events (camera_id, ts DESC)
    WHERE type IN ('camera.online', 'camera.offline', 'camera.stalled');
