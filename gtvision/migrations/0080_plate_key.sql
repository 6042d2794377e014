-- Old ↔ Mercosul plate search (issue 19): a car keeps its identity when its old plate LLL9D99
-- becomes Mercosul (fifth character digit → letter, 0→A … 9→J). The same rules as
-- gtvision.operators.lpr.equivalence, in SQL, over the stored (normalised) plate:
--
-- gtv_plate_key(plate)   the vehicle's key: the Mercosul form of an old plate, else the plate
-- gtv_plate_other(plate) the plate's other form, NULL when it has none (a Mercosul plate whose
--                        fifth letter is after J, a foreign or partial read)
--
-- GET /events?plate=…&equivalent=true searches through two expression indexes: an exact plate
-- is gtv_plate_key(plate) = key (btree), a wildcard or fuzzy one also tries the other form
-- (trigram). Building an index computes the expression for every existing row: that is the
-- backfill; rows written later are indexed as they are inserted, no writer changes.
CREATE FUNCTION gtv_plate_other(plate text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN plate ~ '^[A-Z]{3}[0-9]{4}$' THEN
            overlay(plate PLACING translate(substr(plate, 5, 1), '0123456789', 'ABCDEFGHIJ')
                    FROM 5 FOR 1)
        WHEN plate ~ '^[A-Z]{3}[0-9][A-J][0-9]{2}$' THEN
            overlay(plate PLACING translate(substr(plate, 5, 1), 'ABCDEFGHIJ', '0123456789')
                    FROM 5 FOR 1)
    END
$$;

-- Self-contained (built-ins only) rather than calling gtv_plate_other: a restore runs index
-- expressions with an empty search_path, where an unqualified call to our function fails.
CREATE FUNCTION gtv_plate_key(plate text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN plate ~ '^[A-Z]{3}[0-9]{4}$' THEN
            overlay(plate PLACING translate(substr(plate, 5, 1), '0123456789', 'ABCDEFGHIJ')
                    FROM 5 FOR 1)
        ELSE plate
    END
$$;

CREATE INDEX events_plate_key ON events (gtv_plate_key(plate)) WHERE plate IS NOT NULL;
CREATE INDEX events_plate_other_trgm ON events USING gin (gtv_plate_other(plate) gin_trgm_ops)
    WHERE gtv_plate_other(plate) IS NOT NULL;
