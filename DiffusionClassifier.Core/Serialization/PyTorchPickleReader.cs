using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using static TorchSharp.torch;

namespace DiffusionClassifier.Serialization;

/// <summary>
/// A restricted pickle interpreter for the <c>data.pkl</c> of a <c>torch.save(state_dict)</c> checkpoint. It knows
/// only the opcodes such a pickle uses and only the globals in <see cref="AllowedGlobals"/>; it never imports,
/// calls or executes anything: the allowed "calls" are interpreted here into plain descriptions (dictionaries,
/// tensor references). Any other opcode or global is an <see cref="InvalidDataException"/>.
/// </summary>
internal static class PyTorchPickleReader
{
    /// <summary>The globals a state_dict pickle may reference, with the meaning this reader gives them.</summary>
    public static readonly IReadOnlyDictionary<string, ScalarType?> AllowedGlobals = new Dictionary<string, ScalarType?>(StringComparer.Ordinal)
    {
        ["collections.OrderedDict"] = null,
        ["torch._utils._rebuild_tensor_v2"] = null,
        ["torch._utils._rebuild_tensor"] = null,
        ["torch._utils._rebuild_parameter"] = null,
        ["torch.FloatStorage"] = ScalarType.Float32,
        ["torch.DoubleStorage"] = ScalarType.Float64,
        ["torch.HalfStorage"] = ScalarType.Float16,
        ["torch.BFloat16Storage"] = ScalarType.BFloat16,
        ["torch.LongStorage"] = ScalarType.Int64,
        ["torch.IntStorage"] = ScalarType.Int32,
        ["torch.ShortStorage"] = ScalarType.Int16,
        ["torch.CharStorage"] = ScalarType.Int8,
        ["torch.ByteStorage"] = ScalarType.Byte,
        ["torch.BoolStorage"] = ScalarType.Bool,
    };

    /// <summary>The largest pickle accepted (a state_dict's pickle is a few hundred kilobytes at most).</summary>
    public const int MaxPickleBytes = 64 << 20;

    /// <summary>A storage file of the archive, as named by a persistent id.</summary>
    internal sealed record StorageRef(string Key, ScalarType DType, long Numel);

    /// <summary>A tensor view of a storage, as described by <c>_rebuild_tensor_v2</c>.</summary>
    internal sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride);

    /// <summary>A Python dict or OrderedDict, in insertion order.</summary>
    internal sealed class PyDict
    {
        public List<KeyValuePair<object?, object?>> Items { get; } = [];
    }

    private sealed class PyList
    {
        public List<object?> Items { get; } = [];
    }

    private sealed record PyTuple(object?[] Items);

    private sealed record PyGlobal(string Name);

    /// <summary>Runs the pickle and returns its result.</summary>
    /// <param name="pickle">The whole pickle.</param>
    /// <returns>A <see cref="PyDict"/>, <see cref="TensorRef"/>, string, long, double, bool or null (or an internal value that the caller rejects).</returns>
    /// <exception cref="InvalidDataException">Anything outside the supported subset, or a malformed pickle.</exception>
    public static object? Read(ReadOnlySpan<byte> pickle)
    {
        if (pickle.Length > MaxPickleBytes)
            throw new InvalidDataException($"The pickle is {pickle.Length} bytes, above the limit of {MaxPickleBytes}.");
        var stack = new List<object?>();
        var marks = new Stack<int>();
        var memo = new Dictionary<long, object?>();
        var storages = new Dictionary<string, StorageRef>(StringComparer.Ordinal);
        int pos = 0;

        while (true)
        {
            if (pos >= pickle.Length) throw Error(pos, "the pickle ends without a STOP opcode");
            int at = pos;
            byte op = pickle[pos++];
            switch (op)
            {
                case 0x80: // PROTO
                    {
                        int proto = Take(pickle, ref pos, 1, at)[0];
                        if (proto < 2 || proto > 5) throw Error(at, $"pickle protocol {proto} is not supported (2 to 5 are)");
                        break;
                    }
                case 0x95: // FRAME: a length hint only
                    Take(pickle, ref pos, 8, at);
                    break;
                case (byte)'.': // STOP
                    if (stack.Count != 1 || marks.Count != 0) throw Error(at, $"STOP with {stack.Count} values on the stack (1 expected)");
                    return stack[0];
                case (byte)'(': // MARK
                    marks.Push(stack.Count);
                    break;
                case (byte)'}': // EMPTY_DICT
                    stack.Add(new PyDict());
                    break;
                case (byte)']': // EMPTY_LIST
                    stack.Add(new PyList());
                    break;
                case (byte)')': // EMPTY_TUPLE
                    stack.Add(new PyTuple([]));
                    break;
                case (byte)'N': // NONE
                    stack.Add(null);
                    break;
                case 0x88: // NEWTRUE
                    stack.Add(true);
                    break;
                case 0x89: // NEWFALSE
                    stack.Add(false);
                    break;
                case (byte)'K': // BININT1
                    stack.Add((long)Take(pickle, ref pos, 1, at)[0]);
                    break;
                case (byte)'M': // BININT2
                    stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(pickle, ref pos, 2, at)));
                    break;
                case (byte)'J': // BININT
                    stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4, at)));
                    break;
                case 0x8a: // LONG1
                    {
                        int n = Take(pickle, ref pos, 1, at)[0];
                        if (n > 8) throw Error(at, $"an integer of {n} bytes is too large");
                        var bytes = Take(pickle, ref pos, (ulong)n, at);
                        long v = 0;
                        for (int i = n - 1; i >= 0; i--) v = (v << 8) | bytes[i];
                        if (n is > 0 and < 8 && (bytes[n - 1] & 0x80) != 0) v -= 1L << (8 * n); // two's complement sign
                        stack.Add(v);
                        break;
                    }
                case (byte)'G': // BINFLOAT (big-endian)
                    stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Take(pickle, ref pos, 8, at)));
                    break;
                case (byte)'X': // BINUNICODE
                    {
                        uint n = BinaryPrimitives.ReadUInt32LittleEndian(Take(pickle, ref pos, 4, at));
                        stack.Add(Utf8(Take(pickle, ref pos, n, at), at));
                        break;
                    }
                case 0x8c: // SHORT_BINUNICODE
                    {
                        int n = Take(pickle, ref pos, 1, at)[0];
                        stack.Add(Utf8(Take(pickle, ref pos, (ulong)n, at), at));
                        break;
                    }
                case 0x8d: // BINUNICODE8
                    {
                        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(Take(pickle, ref pos, 8, at));
                        stack.Add(Utf8(Take(pickle, ref pos, n, at), at));
                        break;
                    }
                case (byte)'t': // TUPLE
                    stack.Add(new PyTuple(PopToMark(stack, marks, at)));
                    break;
                case 0x85: // TUPLE1
                case 0x86: // TUPLE2
                case 0x87: // TUPLE3
                    {
                        int n = op - 0x84;
                        Need(stack, marks, n, at);
                        var items = stack.GetRange(stack.Count - n, n).ToArray();
                        stack.RemoveRange(stack.Count - n, n);
                        stack.Add(new PyTuple(items));
                        break;
                    }
                case (byte)'a': // APPEND
                    {
                        Need(stack, marks, 2, at);
                        var value = Pop(stack);
                        As<PyList>(stack[^1], at, "APPEND").Items.Add(value);
                        break;
                    }
                case (byte)'e': // APPENDS
                    {
                        var items = PopToMark(stack, marks, at);
                        Need(stack, marks, 1, at);
                        As<PyList>(stack[^1], at, "APPENDS").Items.AddRange(items);
                        break;
                    }
                case (byte)'s': // SETITEM
                    {
                        Need(stack, marks, 3, at);
                        var value = Pop(stack);
                        var key = Pop(stack);
                        As<PyDict>(stack[^1], at, "SETITEM").Items.Add(new(key, value));
                        break;
                    }
                case (byte)'u': // SETITEMS
                    {
                        var items = PopToMark(stack, marks, at);
                        if (items.Length % 2 != 0) throw Error(at, "SETITEMS with an odd number of values");
                        Need(stack, marks, 1, at);
                        var dict = As<PyDict>(stack[^1], at, "SETITEMS");
                        for (int i = 0; i < items.Length; i += 2) dict.Items.Add(new(items[i], items[i + 1]));
                        break;
                    }
                case (byte)'q': // BINPUT
                    Need(stack, marks, 1, at);
                    memo[Take(pickle, ref pos, 1, at)[0]] = stack[^1];
                    break;
                case (byte)'r': // LONG_BINPUT
                    Need(stack, marks, 1, at);
                    memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(pickle, ref pos, 4, at))] = stack[^1];
                    break;
                case 0x94: // MEMOIZE
                    Need(stack, marks, 1, at);
                    memo[memo.Count] = stack[^1];
                    break;
                case (byte)'h': // BINGET
                    stack.Add(Get(memo, Take(pickle, ref pos, 1, at)[0], at));
                    break;
                case (byte)'j': // LONG_BINGET
                    stack.Add(Get(memo, BinaryPrimitives.ReadUInt32LittleEndian(Take(pickle, ref pos, 4, at)), at));
                    break;
                case (byte)'0': // POP
                    Need(stack, marks, 1, at);
                    Pop(stack);
                    break;
                case (byte)'c': // GLOBAL "module\nname\n"
                    {
                        string module = Line(pickle, ref pos, at), name = Line(pickle, ref pos, at);
                        stack.Add(Global(module, name, at));
                        break;
                    }
                case 0x93: // STACK_GLOBAL
                    {
                        Need(stack, marks, 2, at);
                        var name = Pop(stack);
                        var module = Pop(stack);
                        if (module is not string m || name is not string n) throw Error(at, "STACK_GLOBAL needs two strings");
                        stack.Add(Global(m, n, at));
                        break;
                    }
                case (byte)'Q': // BINPERSID
                    Need(stack, marks, 1, at);
                    stack.Add(PersistentLoad(Pop(stack), storages, at));
                    break;
                case (byte)'R': // REDUCE
                    {
                        Need(stack, marks, 2, at);
                        var args = Pop(stack);
                        var func = Pop(stack);
                        stack.Add(Reduce(func, args, at));
                        break;
                    }
                case (byte)'b': // BUILD: only the attributes of an OrderedDict (state_dict._metadata), which are ignored
                    {
                        Need(stack, marks, 2, at);
                        var state = Pop(stack);
                        if (stack[^1] is not (PyDict or TensorRef))
                            throw Error(at, $"BUILD on {Describe(stack[^1])} is not supported");
                        if (state is not (PyDict or PyTuple or null))
                            throw Error(at, $"BUILD with {Describe(state)} as state is not supported");
                        break;
                    }
                default:
                    throw Error(at, $"opcode 0x{op:x2} ('{(op >= 0x20 && op < 0x7f ? (char)op : '?')}') is not supported by this restricted reader");
            }
        }
    }

    private static object Global(string module, string name, int at)
    {
        string full = module + "." + name;
        if (!AllowedGlobals.ContainsKey(full))
            throw Error(at, $"the pickle references the global '{SafeTensors.Truncate(full)}', which is not allowed in a state_dict checkpoint " +
                "(loading never imports or calls anything; allowed are collections.OrderedDict, torch._utils._rebuild_tensor_v2, " +
                "torch._utils._rebuild_parameter and the torch.*Storage types)");
        return new PyGlobal(full);
    }

    private static StorageRef PersistentLoad(object? pid, Dictionary<string, StorageRef> storages, int at)
    {
        // ('storage', torch.FloatStorage, '<key>', '<location>', numel)
        if (pid is not PyTuple { Items: [string kind, PyGlobal type, string key, string _, long numel, ..] } || kind != "storage")
            throw Error(at, $"persistent id {Describe(pid)} is not a ('storage', type, key, location, numel) tuple");
        if (AllowedGlobals[type.Name] is not ScalarType dtype)
            throw Error(at, $"persistent id names '{type.Name}', which is not a storage type");
        if (key.Length == 0 || key.Length > 64 || !key.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_'))
            throw Error(at, $"storage key '{SafeTensors.Truncate(key)}' is not a plain name");
        if (numel < 0) throw Error(at, $"storage '{key}' has a negative size {numel}");
        var storage = new StorageRef(key, dtype, numel);
        if (storages.TryGetValue(key, out var previous))
        {
            if (previous != storage) throw Error(at, $"storage '{key}' is described twice differently");
            return previous;
        }
        storages[key] = storage;
        return storage;
    }

    private static object Reduce(object? func, object? args, int at)
    {
        if (func is not PyGlobal g) throw Error(at, $"REDUCE calls {Describe(func)}, which is not callable here");
        if (args is not PyTuple t) throw Error(at, $"REDUCE of '{g.Name}' with {Describe(args)} instead of an argument tuple");
        switch (g.Name)
        {
            case "collections.OrderedDict":
                if (t.Items.Length != 0) throw Error(at, "OrderedDict is only supported without arguments");
                return new PyDict();
            case "torch._utils._rebuild_tensor_v2":
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (t.Items.Length is < 6 or > 7) throw Error(at, $"_rebuild_tensor_v2 takes 6 or 7 arguments, not {t.Items.Length}");
                if (t.Items[4] is not bool) throw Error(at, "_rebuild_tensor_v2's requires_grad is not a bool");
                return TensorOf(t.Items, at);
            case "torch._utils._rebuild_tensor":
                if (t.Items.Length != 4) throw Error(at, $"_rebuild_tensor takes 4 arguments, not {t.Items.Length}");
                return TensorOf(t.Items, at);
            case "torch._utils._rebuild_parameter":
                // (data, requires_grad, backward_hooks): the data is already a tensor
                if (t.Items.Length != 3 || t.Items[0] is not TensorRef data)
                    throw Error(at, "_rebuild_parameter needs (tensor, requires_grad, backward_hooks)");
                return data;
            default:
                throw Error(at, $"'{g.Name}' cannot be called");
        }
    }

    private static TensorRef TensorOf(object?[] items, int at)
    {
        if (items[0] is not StorageRef storage) throw Error(at, $"a tensor's storage is {Describe(items[0])}");
        if (items[1] is not long offset) throw Error(at, "a tensor's storage offset is not an integer");
        var size = Longs(items[2], "size", at);
        var stride = Longs(items[3], "stride", at);
        if (size.Length != stride.Length) throw Error(at, $"a tensor has {size.Length} sizes but {stride.Length} strides");
        return new TensorRef(storage, offset, size, stride);
    }

    private static long[] Longs(object? value, string what, int at)
    {
        if (value is not PyTuple t) throw Error(at, $"a tensor's {what} is {Describe(value)}, not a tuple");
        var result = new long[t.Items.Length];
        for (int i = 0; i < result.Length; i++)
            result[i] = t.Items[i] is long v ? v : throw Error(at, $"a tensor's {what} holds {Describe(t.Items[i])}");
        return result;
    }

    private static ReadOnlySpan<byte> Take(ReadOnlySpan<byte> pickle, ref int pos, ulong count, int at)
    {
        if (count > (ulong)(pickle.Length - pos)) throw Error(at, $"the pickle ends inside an opcode (needs {count} more bytes, {pickle.Length - pos} left)");
        var span = pickle.Slice(pos, (int)count);
        pos += (int)count;
        return span;
    }

    private static string Line(ReadOnlySpan<byte> pickle, ref int pos, int at)
    {
        int n = pickle[pos..].IndexOf((byte)'\n');
        if (n < 0 || n > 256) throw Error(at, "GLOBAL without a short newline-terminated name");
        string s = Utf8(pickle.Slice(pos, n), at);
        pos += n + 1;
        return s;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private static string Utf8(ReadOnlySpan<byte> bytes, int at)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Error(at, "a string is not valid UTF-8");
        }
    }

    private static object? Get(Dictionary<long, object?> memo, long index, int at) =>
        memo.TryGetValue(index, out var v) ? v : throw Error(at, $"memo entry {index} is read before it is written");

    private static void Need(List<object?> stack, Stack<int> marks, int n, int at)
    {
        int floor = marks.Count > 0 ? marks.Peek() : 0;
        if (stack.Count - floor < n) throw Error(at, $"the stack holds fewer than the {n} values the opcode needs");
    }

    private static object? Pop(List<object?> stack)
    {
        var v = stack[^1];
        stack.RemoveAt(stack.Count - 1);
        return v;
    }

    private static object?[] PopToMark(List<object?> stack, Stack<int> marks, int at)
    {
        if (marks.Count == 0) throw Error(at, "an opcode needs a MARK but there is none");
        int m = marks.Pop();
        var items = stack.GetRange(m, stack.Count - m).ToArray();
        stack.RemoveRange(m, stack.Count - m);
        return items;
    }

    private static T As<T>(object? value, int at, string opcode) where T : class =>
        value as T ?? throw Error(at, $"{opcode} on {Describe(value)}");

    /// <summary>A short description of a value for messages (never its full content).</summary>
    public static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"the string '{SafeTensors.Truncate(s, 40)}'",
        long l => $"the integer {l.ToString(CultureInfo.InvariantCulture)}",
        double d => $"the float {d.ToString(CultureInfo.InvariantCulture)}",
        bool b => b ? "True" : "False",
        PyDict d => $"a dict of {d.Items.Count} items",
        PyList l => $"a list of {l.Items.Count} items",
        PyTuple t => $"a tuple of {t.Items.Length} items",
        PyGlobal g => $"the global '{g.Name}'",
        StorageRef s => $"storage '{s.Key}'",
        TensorRef => "a tensor",
        _ => value.GetType().Name,
    };

    private static InvalidDataException Error(int offset, string message) =>
        new($"Refused pickle (at byte {offset}): {message}.");
}
