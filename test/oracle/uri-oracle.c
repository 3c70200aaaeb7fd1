/*
 * The differential oracle for PKCS#11 URIs: the real libp11-kit 0.24.1's
 * p11_kit_uri_* API, driven one command per stdin line, one JSON object per
 * line on stdout. Binary values travel as lower-case hex; "-" is empty.
 *
 * Commands (fields separated by single spaces):
 *   P <parse-type> <format-type> <uri-hex>
 *       parse with p11_kit_uri_parse, then format with p11_kit_uri_format:
 *       {"rc":n} on error, else {"rc":0,"unrec":0|1,
 *        "ld":hex,"lm":hex,"lv":[major,minor],        module info (raw 32-byte fields)
 *        "sd":hex,"sm":hex,"sid":"decimal",           slot info (raw 64/32 bytes) and id
 *        "tl":hex,"tm":hex,"to":hex,"ts":hex,         token label/manufacturer/model/serial
 *        "id":hex|null,"label":hex|null,"class":n|null,
 *        "ps":hex|null,"pv":hex|null,"mn":hex|null,"mp":hex|null,
 *        "fmt":str}
 *   L <0|1>      unset / set P11_KIT_URI_LOWERCASE for the following formats
 *   T <uri-hex> <label> <manufacturer> <model> <serial>     match_token_info
 *   S <uri-hex> <description> <manufacturer>                match_slot_info
 *   M <uri-hex> <description> <manufacturer> <major> <minor>  match_module_info
 *   A <uri-hex> <n> [<type> <value-hex>]...                 match_attributes
 *       structure text fields are hex, padded with spaces to the field's width;
 *       match output: {"rc":n,"match":0|1} (rc is the parse result, FOR_ANY).
 *   D <module-path>
 *       load a real module with p11_kit_module_load, initialize it and describe what a
 *       URI can match, as raw fields: {"ok":1,"ld":hex,"lm":hex,"lv":[M,m],
 *       "slots":[{"id":"n","sd":hex,"sm":hex,"token":{"tl","tm","to","ts"}|null}]}
 *       or {"ok":0,"rv":n}.
 * Types are decimal P11KitUriType values (65535 = FOR_ANY).
 */
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (1 << 20)
#define MAX_ATTRS 16

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes hex ("-" = empty) into a fresh NUL-terminated buffer; NULL if malformed. */
static unsigned char *unhex(const char *hex, size_t *len)
{
	if (!hex)
		return NULL;
	if (strcmp(hex, "-") == 0)
		hex = "";
	size_t n = strlen(hex);
	if (n % 2)
		return NULL;
	unsigned char *out = malloc(n / 2 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	out[n / 2] = 0;
	*len = n / 2;
	return out;
}

static void put_hex(const void *data, size_t len)
{
	const unsigned char *p = data;
	putchar('"');
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
	putchar('"');
}

static void put_hex_str(const char *s)
{
	if (s)
		put_hex(s, strlen(s));
	else
		fputs("null", stdout);
}

static void put_json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void put_attr(P11KitUri *uri, CK_ATTRIBUTE_TYPE type)
{
	CK_ATTRIBUTE *attr = p11_kit_uri_get_attribute(uri, type);
	if (!attr)
		fputs("null", stdout);
	else
		put_hex(attr->pValue, attr->ulValueLen);
}

/* Parses uri-hex; returns the parse code and leaves the URI in *out. */
static int parse_hex(const char *hex, P11KitUriType type, P11KitUri **out)
{
	size_t len;
	unsigned char *text = unhex(hex, &len);
	*out = p11_kit_uri_new();
	if (!text || !*out) {
		free(text);
		return 99;
	}
	int rc = p11_kit_uri_parse((const char *)text, type, *out);
	free(text);
	return rc;
}

static void cmd_parse(char **argv, int argc)
{
	if (argc != 4) {
		puts("{\"error\":\"P needs 3 arguments\"}");
		return;
	}
	P11KitUri *uri;
	int rc = parse_hex(argv[3], (P11KitUriType)strtoul(argv[1], NULL, 10), &uri);
	if (rc != P11_KIT_URI_OK) {
		printf("{\"rc\":%d}\n", rc);
		p11_kit_uri_free(uri);
		return;
	}
	CK_INFO *mod = p11_kit_uri_get_module_info(uri);
	CK_SLOT_INFO *slot = p11_kit_uri_get_slot_info(uri);
	CK_TOKEN_INFO *tok = p11_kit_uri_get_token_info(uri);
	printf("{\"rc\":0,\"unrec\":%d,\"ld\":", p11_kit_uri_any_unrecognized(uri));
	put_hex(mod->libraryDescription, sizeof(mod->libraryDescription));
	fputs(",\"lm\":", stdout);
	put_hex(mod->manufacturerID, sizeof(mod->manufacturerID));
	printf(",\"lv\":[%u,%u],\"sd\":", mod->libraryVersion.major, mod->libraryVersion.minor);
	put_hex(slot->slotDescription, sizeof(slot->slotDescription));
	fputs(",\"sm\":", stdout);
	put_hex(slot->manufacturerID, sizeof(slot->manufacturerID));
	printf(",\"sid\":\"%lu\",\"tl\":", (unsigned long)p11_kit_uri_get_slot_id(uri));
	put_hex(tok->label, sizeof(tok->label));
	fputs(",\"tm\":", stdout);
	put_hex(tok->manufacturerID, sizeof(tok->manufacturerID));
	fputs(",\"to\":", stdout);
	put_hex(tok->model, sizeof(tok->model));
	fputs(",\"ts\":", stdout);
	put_hex(tok->serialNumber, sizeof(tok->serialNumber));
	fputs(",\"id\":", stdout);
	put_attr(uri, CKA_ID);
	fputs(",\"label\":", stdout);
	put_attr(uri, CKA_LABEL);
	CK_ATTRIBUTE *klass = p11_kit_uri_get_attribute(uri, CKA_CLASS);
	if (klass && klass->ulValueLen == sizeof(CK_OBJECT_CLASS))
		printf(",\"class\":%lu", *(CK_OBJECT_CLASS *)klass->pValue);
	else
		fputs(",\"class\":null", stdout);
	fputs(",\"ps\":", stdout);
	put_hex_str(p11_kit_uri_get_pin_source(uri));
	fputs(",\"pv\":", stdout);
	put_hex_str(p11_kit_uri_get_pin_value(uri));
	fputs(",\"mn\":", stdout);
	put_hex_str(p11_kit_uri_get_module_name(uri));
	fputs(",\"mp\":", stdout);
	put_hex_str(p11_kit_uri_get_module_path(uri));
	char *formatted = NULL;
	int frc = p11_kit_uri_format(uri, (P11KitUriType)strtoul(argv[2], NULL, 10), &formatted);
	if (frc == P11_KIT_URI_OK && formatted) {
		fputs(",\"fmt\":", stdout);
		put_json_str(formatted);
	} else {
		printf(",\"fmt_rc\":%d", frc);
	}
	free(formatted);
	puts("}");
	p11_kit_uri_free(uri);
}

/* Fills a fixed-width text field from hex, space-padded; 0 if the value does not fit. */
static int fill(CK_UTF8CHAR *field, size_t width, const char *hex)
{
	size_t len;
	unsigned char *value = unhex(hex, &len);
	if (!value || len > width) {
		free(value);
		return 0;
	}
	memset(field, ' ', width);
	memcpy(field, value, len);
	free(value);
	return 1;
}

static void cmd_match(char **argv, int argc)
{
	P11KitUri *uri;
	int rc = parse_hex(argc > 1 ? argv[1] : "-", P11_KIT_URI_FOR_ANY, &uri);
	int match = -1;
	switch (argv[0][0]) {
	case 'T': {
		CK_TOKEN_INFO info;
		memset(&info, 0, sizeof(info));
		if (argc == 6 && fill(info.label, sizeof(info.label), argv[2]) &&
		    fill(info.manufacturerID, sizeof(info.manufacturerID), argv[3]) &&
		    fill(info.model, sizeof(info.model), argv[4]) &&
		    fill(info.serialNumber, sizeof(info.serialNumber), argv[5]))
			match = p11_kit_uri_match_token_info(uri, &info);
		break;
	}
	case 'S': {
		CK_SLOT_INFO info;
		memset(&info, 0, sizeof(info));
		if (argc == 4 && fill(info.slotDescription, sizeof(info.slotDescription), argv[2]) &&
		    fill(info.manufacturerID, sizeof(info.manufacturerID), argv[3]))
			match = p11_kit_uri_match_slot_info(uri, &info);
		break;
	}
	case 'M': {
		CK_INFO info;
		memset(&info, 0, sizeof(info));
		if (argc == 6 && fill(info.libraryDescription, sizeof(info.libraryDescription), argv[2]) &&
		    fill(info.manufacturerID, sizeof(info.manufacturerID), argv[3])) {
			info.libraryVersion.major = (CK_BYTE)strtoul(argv[4], NULL, 10);
			info.libraryVersion.minor = (CK_BYTE)strtoul(argv[5], NULL, 10);
			match = p11_kit_uri_match_module_info(uri, &info);
		}
		break;
	}
	case 'A': {
		CK_ATTRIBUTE attrs[MAX_ATTRS];
		unsigned char *values[MAX_ATTRS];
		unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
		unsigned long ok = 0;
		if (n <= MAX_ATTRS && argc == 3 + 2 * (int)n) {
			for (; ok < n; ok++) {
				size_t len;
				values[ok] = unhex(argv[4 + 2 * ok], &len);
				if (!values[ok])
					break;
				attrs[ok].type = strtoul(argv[3 + 2 * ok], NULL, 10);
				attrs[ok].pValue = values[ok];
				attrs[ok].ulValueLen = len;
			}
			if (ok == n)
				match = p11_kit_uri_match_attributes(uri, attrs, n);
			for (unsigned long i = 0; i < ok; i++)
				free(values[i]);
		}
		break;
	}
	}
	printf("{\"rc\":%d,\"match\":%d}\n", rc, match);
	p11_kit_uri_free(uri);
}

static void put_field(const char *key, const void *data, size_t len)
{
	printf(",\"%s\":", key);
	put_hex(data, len);
}

static void cmd_describe(const char *path)
{
	CK_FUNCTION_LIST *mod = p11_kit_module_load(path, 0);
	if (!mod) {
		puts("{\"ok\":0,\"rv\":-1}");
		return;
	}
	CK_RV rv = p11_kit_module_initialize(mod);
	CK_INFO info;
	if (rv == CKR_OK)
		rv = mod->C_GetInfo(&info);
	CK_SLOT_ID slots[64];
	CK_ULONG n_slots = 64;
	if (rv == CKR_OK)
		rv = mod->C_GetSlotList(CK_FALSE, slots, &n_slots);
	if (rv != CKR_OK) {
		printf("{\"ok\":0,\"rv\":%lu}\n", (unsigned long)rv);
		p11_kit_module_finalize(mod);
		p11_kit_module_release(mod);
		return;
	}
	printf("{\"ok\":1");
	put_field("ld", info.libraryDescription, sizeof(info.libraryDescription));
	put_field("lm", info.manufacturerID, sizeof(info.manufacturerID));
	printf(",\"lv\":[%u,%u],\"slots\":[", info.libraryVersion.major, info.libraryVersion.minor);
	for (CK_ULONG i = 0; i < n_slots; i++) {
		CK_SLOT_INFO slot;
		if (mod->C_GetSlotInfo(slots[i], &slot) != CKR_OK)
			continue;
		printf("%s{\"id\":\"%lu\"", i ? "," : "", (unsigned long)slots[i]);
		put_field("sd", slot.slotDescription, sizeof(slot.slotDescription));
		put_field("sm", slot.manufacturerID, sizeof(slot.manufacturerID));
		CK_TOKEN_INFO tok;
		if ((slot.flags & CKF_TOKEN_PRESENT) && mod->C_GetTokenInfo(slots[i], &tok) == CKR_OK) {
			fputs(",\"token\":{\"tl\":", stdout);
			put_hex(tok.label, sizeof(tok.label));
			put_field("tm", tok.manufacturerID, sizeof(tok.manufacturerID));
			put_field("to", tok.model, sizeof(tok.model));
			put_field("ts", tok.serialNumber, sizeof(tok.serialNumber));
			fputs("}}", stdout);
		} else {
			fputs(",\"token\":null}", stdout);
		}
	}
	puts("]}");
	p11_kit_module_finalize(mod);
	p11_kit_module_release(mod);
}

int main(void)
{
	static char line[MAX_LINE];
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\r\n")] = 0;
		char *argv[3 + 2 * MAX_ATTRS + 1];
		int argc = 0;
		for (char *tok = strtok(line, " "); tok && argc < (int)(sizeof(argv) / sizeof(argv[0]));
		     tok = strtok(NULL, " "))
			argv[argc++] = tok;
		if (argc == 0) {
			puts("{\"error\":\"empty line\"}");
		} else if (strcmp(argv[0], "P") == 0) {
			cmd_parse(argv, argc);
		} else if (strcmp(argv[0], "L") == 0 && argc == 2) {
			if (strcmp(argv[1], "1") == 0)
				setenv("P11_KIT_URI_LOWERCASE", "1", 1);
			else
				unsetenv("P11_KIT_URI_LOWERCASE");
			puts("{\"ok\":1}");
		} else if (strcmp(argv[0], "D") == 0 && argc == 2) {
			cmd_describe(argv[1]);
		} else if (strchr("TSMA", argv[0][0]) && argv[0][1] == 0) {
			cmd_match(argv, argc);
		} else {
			puts("{\"error\":\"unknown command\"}");
		}
	}
	fflush(stdout);
	return 0;
}
