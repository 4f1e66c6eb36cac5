CREATE TABLE "mapping_versions" (
	"community_id" text NOT NULL,
	"version" integer NOT NULL,
	"document" text NOT NULL,
	"saved_by" text,
	"saved_at" bigint NOT NULL,
	"change" text NOT NULL,
	"restored_from" integer,
	CONSTRAINT "mapping_versions_pk" PRIMARY KEY("community_id","version")
);
--> statement-breakpoint
CREATE INDEX "mapping_versions_saved_idx" ON "mapping_versions" USING btree ("saved_at");