-- Seats held and users waiting, kept by a trigger in the same transaction as every change to
-- launch_users, so an ask reads two numbers instead of counting the whole table.
CREATE TABLE launch_counts (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    admitted BIGINT NOT NULL,
    waiting BIGINT NOT NULL
);
INSERT INTO launch_counts (id, admitted, waiting)
    SELECT 1, COUNT(admitted_at), COUNT(*) - COUNT(admitted_at) FROM launch_users;

CREATE FUNCTION launch_users_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE launch_counts
           SET admitted = admitted - (OLD.admitted_at IS NOT NULL)::int,
               waiting = waiting - (OLD.admitted_at IS NULL)::int
         WHERE id = 1;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE launch_counts
           SET admitted = admitted + (NEW.admitted_at IS NOT NULL)::int,
               waiting = waiting + (NEW.admitted_at IS NULL)::int
         WHERE id = 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER launch_users_counted
    AFTER INSERT OR UPDATE OF admitted_at OR DELETE ON launch_users
    FOR EACH ROW EXECUTE FUNCTION launch_users_count();
