-- Owners. A conversation belongs to the user who started it (NULL: started
-- for nobody in particular, by a service); a knowledge base to a tenant
-- (NULL: readable by users without a tenant). User ids are unique across
-- tenants.

ALTER TABLE conversations ADD COLUMN user_id text, ADD COLUMN tenant_id text;
ALTER TABLE knowledge_bases ADD COLUMN tenant_id text;
CREATE INDEX knowledge_bases_by_tenant ON knowledge_bases (tenant_id);
