-- The rights of a PoP's PostgreSQL role (psql -v role=mepm_popN -f pop-grants.sql), after the migrations.
--
-- The role owns nothing, may create nothing (no CREATE on the database or on schema public, which only
-- meao_owner owns) and gets only the DML the MEPM-V worker path uses: `meao worker -Q mecpm.popN` with
-- MEAO_WORKER_BACKGROUND=false (no dispatcher, deliverer or reaper: the control plane runs them) running
-- mecpm.run_op (mecpm/runner.py, meao/lcm/lifecycle.py, mecpm/meao_link.py). Grants go to the
-- control plane (Mm3 over HTTP with the PoP's OAuth2 client), the MEP is reached over Mm5: neither is here.
-- Re-run after a migration that adds a table the worker needs; anything not listed is refused.
\set ON_ERROR_STOP on
BEGIN;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"role";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"role";
GRANT USAGE ON SCHEMA public TO :"role";

-- meao db upgrade at start-up: at head it only reads the version (and takes an advisory lock)
GRANT SELECT ON alembic_version TO :"role";

-- claim an attempt, heartbeat, step boundaries, complete / FAILED_TEMP / rolled back (fenced UPDATEs)
GRANT SELECT, UPDATE ON app_lcm_op_occ TO :"role";
-- the instance's resources (OpenStack ids) as steps make them, and its state at the end
GRANT SELECT, UPDATE ON app_instance TO :"role";
-- the claim settles the attempt's job row in the outbox of jobs (CLAIMED / DONE)
GRANT SELECT, UPDATE ON job TO :"role";
-- what to deploy and where: the package's AppD, the host's cloud, zone, networks and MEP
GRANT SELECT ON app_package, mec_host TO :"role";
-- the images uploaded to this PoP's cloud, noted on the package; one uploader per image (claims)
GRANT SELECT, INSERT, UPDATE ON package_vim_image, image_upload TO :"role";
-- the lifecycle notifications written with the outcome (the control plane's deliverer POSTs them)
GRANT SELECT ON subscription TO :"role";
-- INSERT … RETURNING id: the new row's id is all it reads back, never the payloads (column privilege)
GRANT INSERT, SELECT (id) ON outbox TO :"role";
GRANT USAGE ON SEQUENCE outbox_id_seq TO :"role";
COMMIT;
