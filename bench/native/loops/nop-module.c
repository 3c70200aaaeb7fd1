/*
 * The floor of the bridge bench's raw rows: a PKCS#11 module whose functions do the least a
 * well-behaved module would (answer CKR_OK, fill the length and count out-parameters), so that
 * the same raw closures (through koffi) and the same C loops (pkcs11-loops.c) run against it
 * measure what a call costs with no module work in it. Their difference is the FFI's own price
 * for that call shape on this machine, which no JavaScript caller of a C function list avoids.
 * Only the functions the bench calls are set; every other entry is NULL.
 */
#include <p11-kit/pkcs11.h>

static CK_RV nop_get_info(CK_INFO_PTR info)
{
	info->cryptokiVersion.major = 2;
	return CKR_OK;
}

static CK_RV nop_get_slot_list(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	(void)token_present;
	if (list) {
		if (*count < 1)
			return CKR_BUFFER_TOO_SMALL;
		list[0] = 1;
	}
	*count = 1;
	return CKR_OK;
}

static CK_RV nop_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	(void)slot;
	info->label[0] = 'n';
	return CKR_OK;
}

static CK_RV nop_generate_random(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG len)
{
	(void)session;
	if (len)
		out[0] = 1;
	return CKR_OK;
}

static CK_RV nop_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism)
{
	(void)session;
	(void)mechanism;
	return CKR_OK;
}

static CK_RV nop_init_with_key(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	(void)session;
	(void)mechanism;
	(void)key;
	return CKR_OK;
}

/* A fixed-size output: 32 bytes for C_Digest, 64 for C_Sign; a length query answers the size. */
static CK_RV fixed_output(CK_BYTE_PTR out, CK_ULONG_PTR out_len, CK_ULONG size)
{
	if (out) {
		if (*out_len < size)
			return CKR_BUFFER_TOO_SMALL;
		out[0] = 1;
	}
	*out_len = size;
	return CKR_OK;
}

static CK_RV nop_digest(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	(void)session;
	(void)data;
	(void)data_len;
	return fixed_output(out, out_len, 32);
}

static CK_RV nop_sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	(void)session;
	(void)data;
	(void)data_len;
	return fixed_output(out, out_len, 64);
}

static CK_FUNCTION_LIST functions = {
	.version = { 2, 40 },
	.C_GetInfo = nop_get_info,
	.C_GetSlotList = nop_get_slot_list,
	.C_GetTokenInfo = nop_get_token_info,
	.C_GenerateRandom = nop_generate_random,
	.C_DigestInit = nop_init,
	.C_Digest = nop_digest,
	.C_SignInit = nop_init_with_key,
	.C_Sign = nop_sign,
};

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (!list)
		return CKR_ARGUMENTS_BAD;
	*list = &functions;
	return CKR_OK;
}
