/*
 * XS heap counters for bench:device, read from the machine itself: the
 * simulator's Instrumentation module reports nothing on Linux.
 *
 * counters(collect) -> [slots, chunkBytes, stackPeakSlots, aliased]
 * - slots: slots in use (after a garbage collection when `collect` is true:
 *   then it is what is live).
 * - chunkBytes: chunk heap in use (strings, buffers, bytecode in RAM, ...).
 * - stackPeakSlots: the deepest the JS stack has been since the last
 *   resetStackPeak(), in slots; -1 without an instrumented build (mcconfig -i).
 * - aliased: preloaded objects written at run time (each has a RAM copy).
 *
 * census() -> [label, instances, slots, ...]: the live objects in RAM (after
 * a garbage collection) by what they are: their constructor's name, a
 * function's own name, a closure scope's variables, "?{keys}" for a
 * prototype without a named constructor; and the slots of each: the object,
 * its properties and private fields.
 */

#include "xsAll.h"
#include "xs.h"

void xs_ss_counters(xsMachine* the)
{
	txInteger slots, chunks, stack = -1, aliased = 0;
	txID i;
	if ((xsToInteger(xsArgc) > 0) && xsTest(xsArg(0)))
		xsCollectGarbage();
	slots = (txInteger)the->currentHeapCount;
	chunks = (txInteger)the->currentChunksSize;
#ifdef mxInstrument
	stack = (txInteger)(the->stackTop - the->stackPeak);
#endif
	if (the->aliasArray) {
		for (i = 0; i < the->aliasCount; i++) {
			if (the->aliasArray[i])
				aliased++;
		}
	}
	/* Read before the result is made, so that it is not counted. */
	xsResult = xsNewArray(4);
	xsSetAt(xsResult, xsInteger(0), xsInteger(slots));
	xsSetAt(xsResult, xsInteger(1), xsInteger(chunks));
	xsSetAt(xsResult, xsInteger(2), xsInteger(stack));
	xsSetAt(xsResult, xsInteger(3), xsInteger(aliased));
}

void xs_ss_reset_stack_peak(xsMachine* the)
{
#ifdef mxInstrument
	the->stackPeak = the->stack;
#endif
}

#define CENSUS_SIZE 512
#define LABEL_SIZE 160
static struct {
	char label[LABEL_SIZE];
	txInteger instances;
	txInteger slots;
} gCensus[CENSUS_SIZE];

static void append(char* buffer, txString text)
{
	size_t length = c_strlen(buffer);
	if (text && (length + c_strlen(text) + 1 < LABEL_SIZE))
		c_strcat(buffer, text);
}

/* The keys of an object's first properties, "{a,b,c}". */
static void appendKeys(txMachine* the, char* buffer, txSlot* property, int most)
{
	int k = 0;
	append(buffer, "{");
	for (; property && (k < most); property = property->next) {
		if ((property->ID != XS_NO_ID) && !(property->flag & XS_INTERNAL_FLAG)) {
			if (k++) append(buffer, ",");
			append(buffer, fxGetKeyName(the, property->ID));
		}
	}
	append(buffer, "}");
}

/* A string property of an object, or NULL. */
static txString stringProperty(txSlot* instance, txID id)
{
	txSlot* property;
	for (property = instance->next; property; property = property->next) {
		if (property->ID != id)
			continue;
		if ((property->kind == XS_STRING_KIND) || (property->kind == XS_STRING_X_KIND))
			return property->value.string;
		if ((property->kind == XS_KEY_KIND) || (property->kind == XS_KEY_X_KIND))
			return property->value.key.string;
	}
	return NULL;
}

/* A function's name: its "name" property, or the key its code is named by. */
static txString functionName(txMachine* the, txSlot* function)
{
	txString name = stringProperty(function, mxID(_name));
	txSlot* code = function->next;
	if (!name && code && ((code->kind == XS_CODE_KIND) || (code->kind == XS_CODE_X_KIND)) && (code->ID != XS_NO_ID) && (code->ID > 0))
		name = fxGetKeyName(the, code->ID);
	return name;
}

/* What an object is: its constructor's name, a function's name, a closure scope's variables. */
static void label(txMachine* the, txSlot* instance, char* buffer)
{
	txSlot* prototype = instance->value.instance.prototype;
	txSlot* property;
	buffer[0] = 0;
	if (instance->next && (instance->next->ID == XS_ENVIRONMENT_BEHAVIOR) && (instance->next->flag & XS_INTERNAL_FLAG)) {
		append(buffer, "(scope)");
		appendKeys(the, buffer, instance->next->next, 12);
		return;
	}
	if (instance->next && ((instance->next->kind == XS_CODE_KIND) || (instance->next->kind == XS_CODE_X_KIND) || (instance->next->kind == XS_CALLBACK_KIND))) {
		append(buffer, "function ");
		append(buffer, functionName(the, instance));
		return;
	}
	if (!prototype) {
		append(buffer, "(null prototype)");
		return;
	}
	for (property = prototype->next; property; property = property->next) {
		if ((property->ID == mxID(_constructor)) && (property->kind == XS_REFERENCE_KIND)) {
			txString name = functionName(the, property->value.reference);
			if (name) {
				append(buffer, name);
				return;
			}
		}
	}
	append(buffer, "?");
	appendKeys(the, buffer, prototype->next, 3);
}

void xs_ss_census(xsMachine* the)
{
	txInteger count = 0, i, j;
	txSlot* heap;
	char buffer[LABEL_SIZE];
	xsCollectGarbage();
	for (heap = the->firstHeap; heap; heap = heap->next) {
		txSlot* slot = heap + 1;
		txSlot* limit = heap->value.reference;
		for (; slot < limit; slot++) {
			txSlot* property;
			txInteger size = 1;
			if (slot->kind != XS_INSTANCE_KIND)
				continue;
			for (property = slot->next; property; property = property->next) {
				size++;
				if (property->kind == XS_PRIVATE_KIND) {
					txSlot* item;
					for (item = property->value.private.first; item; item = item->next)
						size++;
				}
			}
			label(the, slot, buffer);
			for (i = 0; i < count; i++) {
				if (!c_strcmp(gCensus[i].label, buffer))
					break;
			}
			if (i == count) {
				if (count == CENSUS_SIZE)
					continue;
				c_strcpy(gCensus[count].label, buffer);
				gCensus[count].instances = 0;
				gCensus[count].slots = 0;
				count++;
			}
			gCensus[i].instances++;
			gCensus[i].slots += size;
		}
	}
	/* The labels are copies: making these strings cannot move them. */
	xsResult = xsNewArray(0);
	for (i = 0, j = 0; i < count; i++) {
		xsSetAt(xsResult, xsInteger(j++), xsString(gCensus[i].label));
		xsSetAt(xsResult, xsInteger(j++), xsInteger(gCensus[i].instances));
		xsSetAt(xsResult, xsInteger(j++), xsInteger(gCensus[i].slots));
	}
}
