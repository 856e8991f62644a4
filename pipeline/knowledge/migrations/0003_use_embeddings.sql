-- Each chunk's vector from a second, independent multilingual embedder
-- (Universal Sentence Encoder, multilingual v3): the fused ranking
-- (pipeline/knowledge/fusion.py) weighs it against the e5 scores to decide
-- between a same-language and an other-language candidate. It is only read
-- for the ~100 candidates of a search, so it has no index. NULL for chunks
-- stored before this migration (and for bases whose main embedder the fused
-- ranking was not trained with): such a base is ranked without it until an
-- update_knowledge_base (mode 'full') fills it in.
ALTER TABLE chunks ADD COLUMN use_embedding vector(512);
