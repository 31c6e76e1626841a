-- Seats held and users waiting, kept by triggers in the same transaction as every change to
-- launch_users, so an ask reads two numbers instead of counting the whole table.
CREATE TABLE launch_counts (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    admitted INTEGER NOT NULL,
    waiting INTEGER NOT NULL
);
INSERT INTO launch_counts (id, admitted, waiting)
    SELECT 1, COUNT(admitted_at), COUNT(*) - COUNT(admitted_at) FROM launch_users;

CREATE TRIGGER launch_users_counted_insert AFTER INSERT ON launch_users BEGIN
    UPDATE launch_counts
       SET admitted = admitted + (NEW.admitted_at IS NOT NULL),
           waiting = waiting + (NEW.admitted_at IS NULL)
     WHERE id = 1;
END;

CREATE TRIGGER launch_users_counted_update AFTER UPDATE OF admitted_at ON launch_users BEGIN
    UPDATE launch_counts
       SET admitted = admitted + (NEW.admitted_at IS NOT NULL) - (OLD.admitted_at IS NOT NULL),
           waiting = waiting + (NEW.admitted_at IS NULL) - (OLD.admitted_at IS NULL)
     WHERE id = 1;
END;

CREATE TRIGGER launch_users_counted_delete AFTER DELETE ON launch_users BEGIN
    UPDATE launch_counts
       SET admitted = admitted - (OLD.admitted_at IS NOT NULL),
           waiting = waiting - (OLD.admitted_at IS NULL)
     WHERE id = 1;
END;
