CREATE TABLE "community_settings" (
	"community_id" text PRIMARY KEY NOT NULL,
	"consent_mode" text DEFAULT 'all_members' NOT NULL,
	"updated_at" bigint NOT NULL
);
