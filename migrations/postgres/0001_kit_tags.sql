CREATE TABLE "kit_tags" (
	"credential_id" text NOT NULL,
	"name" text NOT NULL,
	"tag_id" bigint NOT NULL,
	"learnt_at" bigint NOT NULL,
	CONSTRAINT "kit_tags_pk" PRIMARY KEY("credential_id","name")
);
