-- Every change of a camera row notifies 'gtv_cameras' (delivered at commit), whatever made it:
-- the MediaMTX path sync (sinks/mediamtx.py) reconciles on it instead of waiting for its timer.
CREATE FUNCTION gtv_cameras_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gtv_cameras', COALESCE(NEW.id, OLD.id)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER cameras_notify
    AFTER INSERT OR UPDATE OR DELETE ON cameras
    FOR EACH ROW EXECUTE FUNCTION gtv_cameras_notify();
