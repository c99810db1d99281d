using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace MLNetTransformerExtensions.Checkpoints;

/// <summary>A Python global (module and name) that a pickle referred to and the policy allowed.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A Python dict (or OrderedDict) read from a pickle, keeping insertion order.</summary>
internal sealed class PickleDict
{
    private readonly HashSet<object> keys = [];

    public List<KeyValuePair<object, object?>> Items { get; } = [];

    /// <summary>Adds an entry; a repeated key means the pickle was not written by Python's pickler.</summary>
    public void Add(object? key, object? value)
    {
        if (key is not (string or long))
            throw new InvalidDataException($"a dict key is a {RestrictedUnpickler.Describe(key)}; only string and integer keys are read.");
        if (!keys.Add(key))
            throw new InvalidDataException($"the dict key '{key}' appears twice.");
        Items.Add(new(key, value));
    }
}

/// <summary>What a pickle may build beyond plain data: the policy of one file format.</summary>
internal interface IPickleObjectFactory
{
    /// <summary>Whether a GLOBAL naming <paramref name="module"/>.<paramref name="name"/> is allowed at all.</summary>
    bool IsAllowed(string module, string name);

    /// <summary>Resolves a persistent id (BINPERSID): how a format refers to data kept outside the pickle.</summary>
    object PersistentLoad(object? id);

    /// <summary>Calls an allowed global with its arguments (REDUCE, NEWOBJ).</summary>
    object Reduce(PickleGlobal callable, object?[] arguments);

    /// <summary>Sets the state of an object built earlier (BUILD).</summary>
    void Build(object? target, object? state);
}

/// <summary>
/// A pickle reader that can only produce plain data (None, bools, integers, floats, strings, bytes, tuples as
/// <c>object?[]</c>, lists as <see cref="List{T}"/>, dicts as <see cref="PickleDict"/>) and whatever its
/// <see cref="IPickleObjectFactory"/> builds from the globals it allows.
/// </summary>
/// <remarks>
/// Written here rather than using Razorvine.Pickle because that library turns any global it does not know
/// (<c>os.system</c>, <c>builtins.eval</c>) into a placeholder object instead of refusing it, and keeps its
/// constructor table in process-wide static state. This one refuses a disallowed global at the opcode that names
/// it, supports only the opcodes plain data and <c>torch.save</c> use (no INST, OBJ, EXT, sets or out-of-band
/// buffers), checks every length against the bytes actually present before allocating, and never recurses, so
/// no input can make it run code, exhaust memory beyond the pickle's own size, or overflow the stack.
/// Every problem is an <see cref="InvalidDataException"/> whose message gives the byte offset.
/// </remarks>
internal sealed class RestrictedUnpickler
{
    private const int HighestProtocol = 5;

    private readonly byte[] data;
    private readonly IPickleObjectFactory factory;
    private readonly List<object?> stack = [];
    private readonly Stack<int> marks = new();
    private readonly Dictionary<long, object?> memo = [];
    private int position;

    private RestrictedUnpickler(byte[] data, IPickleObjectFactory factory)
    {
        this.data = data;
        this.factory = factory;
    }

    /// <summary>Reads the object a pickle describes.</summary>
    /// <exception cref="InvalidDataException">The pickle is malformed, uses an unsupported opcode or names a global the policy refuses.</exception>
    public static object? Load(byte[] data, IPickleObjectFactory factory) => new RestrictedUnpickler(data, factory).Run();

    internal static string Describe(object? value) => value switch
    {
        null => "None",
        string => "string",
        long or BigInteger => "integer",
        bool => "bool",
        double => "float",
        byte[] => "bytes",
        object?[] => "tuple",
        List<object?> => "list",
        PickleDict => "dict",
        PickleGlobal g => $"reference to {g}",
        _ => value.GetType().Name,
    };

    private object? Run()
    {
        while (true)
        {
            int at = position;
            byte opcode = ReadByte();
            try
            {
                if (opcode == (byte)'.')
                {
                    if (stack.Count != 1 || marks.Count != 0)
                        throw new InvalidDataException($"STOP leaves {stack.Count} objects and {marks.Count} marks on the stack instead of one object.");
                    return stack[0];
                }

                Execute(opcode);
            }
            catch (InvalidDataException e) when (!e.Message.StartsWith("pickle byte ", StringComparison.Ordinal))
            {
                throw new InvalidDataException($"pickle byte {at} (opcode {Name(opcode)}): {e.Message}", e);
            }
            catch (Exception e) when (e is InvalidCastException or OverflowException or FormatException or ArgumentException)
            {
                throw new InvalidDataException($"pickle byte {at} (opcode {Name(opcode)}): malformed ({e.Message}).", e);
            }
        }
    }

    private void Execute(byte opcode)
    {
        switch (opcode)
        {
            case 0x80: // PROTO
                int protocol = ReadByte();
                if (protocol > HighestProtocol)
                    throw new InvalidDataException($"pickle protocol {protocol} is newer than {HighestProtocol}.");
                break;
            case 0x95: // FRAME: a length hint only
                Take(8);
                break;

            case (byte)'(': marks.Push(stack.Count); break; // MARK
            case (byte)'0': Pop(); break; // POP
            case (byte)'1': PopMark(); break; // POP_MARK
            case (byte)'2': Push(Peek()); break; // DUP

            case (byte)'N': Push(null); break; // NONE
            case 0x88: Push(true); break; // NEWTRUE
            case 0x89: Push(false); break; // NEWFALSE
            case (byte)'K': Push((long)ReadByte()); break; // BININT1
            case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
            case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
            case 0x8a: Push(ReadLittleEndianInteger(ReadByte())); break; // LONG1
            case 0x8b: Push(ReadLittleEndianInteger(BinaryPrimitives.ReadInt32LittleEndian(Take(4)))); break; // LONG4
            case (byte)'I': Push(ParseIntLine(ReadLine())); break; // INT (protocol 0; "00"/"01" are False/True)
            case (byte)'L': Push(long.Parse(ReadLine().TrimEnd('L'), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)); break; // LONG
            case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT

            case 0x8c: Push(ReadUtf8(ReadByte())); break; // SHORT_BINUNICODE
            case (byte)'X': Push(ReadUtf8(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // BINUNICODE
            case 0x8d: Push(ReadUtf8(BinaryPrimitives.ReadUInt64LittleEndian(Take(8)))); break; // BINUNICODE8
            case (byte)'U': Push(Encoding.Latin1.GetString(Take(ReadByte()))); break; // SHORT_BINSTRING (Python 2 str)
            case (byte)'T': Push(Encoding.Latin1.GetString(Take(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))))); break; // BINSTRING
            case (byte)'C': Push(Take(ReadByte()).ToArray()); break; // SHORT_BINBYTES
            case (byte)'B': Push(Take(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))).ToArray()); break; // BINBYTES
            case 0x8e: Push(Take(BinaryPrimitives.ReadUInt64LittleEndian(Take(8))).ToArray()); break; // BINBYTES8

            case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
            case (byte)'t': Push(PopMark()); break; // TUPLE
            case 0x85: Push(PopItems(1)); break; // TUPLE1
            case 0x86: Push(PopItems(2)); break; // TUPLE2
            case 0x87: Push(PopItems(3)); break; // TUPLE3

            case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
            case (byte)'l': Push(new List<object?>(PopMark())); break; // LIST
            case (byte)'a': // APPEND
                var item = Pop();
                PeekAs<List<object?>>("APPEND needs a list").Add(item);
                break;
            case (byte)'e': // APPENDS
                var items = PopMark();
                PeekAs<List<object?>>("APPENDS needs a list").AddRange(items);
                break;

            case (byte)'}': Push(new PickleDict()); break; // EMPTY_DICT
            case (byte)'d': // DICT
                var dict = new PickleDict();
                AddPairs(dict, PopMark());
                Push(dict);
                break;
            case (byte)'s': // SETITEM
                var value = Pop();
                var key = Pop();
                PeekAs<PickleDict>("SETITEM needs a dict").Add(key, value);
                break;
            case (byte)'u': // SETITEMS
                var pairs = PopMark();
                AddPairs(PeekAs<PickleDict>("SETITEMS needs a dict"), pairs);
                break;

            case (byte)'p': memo[ParseMemoIndex(ReadLine())] = Peek(); break; // PUT
            case (byte)'q': memo[ReadByte()] = Peek(); break; // BINPUT
            case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(); break; // LONG_BINPUT
            case 0x94: memo[memo.Count] = Peek(); break; // MEMOIZE
            case (byte)'g': Push(Recall(ParseMemoIndex(ReadLine()))); break; // GET
            case (byte)'h': Push(Recall(ReadByte())); break; // BINGET
            case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET

            case (byte)'c': // GLOBAL
                string module = ReadLine();
                Push(Global(module, ReadLine()));
                break;
            case 0x93: // STACK_GLOBAL
                var globalName = Pop();
                var globalModule = Pop();
                if (globalModule is not string moduleText || globalName is not string nameText)
                    throw new InvalidDataException("STACK_GLOBAL needs two strings.");
                Push(Global(moduleText, nameText));
                break;

            case (byte)'R': // REDUCE: callable(*args)
            case 0x81: // NEWOBJ: cls.__new__(cls, *args), the same for the globals a policy allows
                var arguments = Pop() as object?[] ?? throw new InvalidDataException("the arguments are not a tuple.");
                var callable = Pop() as PickleGlobal ?? throw new InvalidDataException("the callable is not an allowed global.");
                Push(factory.Reduce(callable, arguments));
                break;
            case (byte)'b': // BUILD
                var state = Pop();
                factory.Build(Peek(), state);
                break;
            case (byte)'Q': // BINPERSID
                Push(factory.PersistentLoad(Pop()));
                break;

            default:
                throw new InvalidDataException("this opcode is not one that plain data or torch.save uses, so the pickle is refused.");
        }
    }

    private PickleGlobal Global(string module, string name)
    {
        if (!factory.IsAllowed(module, name))
            throw new InvalidDataException(
                $"the pickle refers to the Python global '{Shorten(module)}.{Shorten(name)}', which is not allowed here, so the file is refused without running anything.");
        return new PickleGlobal(module, name);
    }

    private static void AddPairs(PickleDict dict, object?[] flat)
    {
        if (flat.Length % 2 != 0)
            throw new InvalidDataException("a dict needs key/value pairs but got an odd number of items.");
        for (int i = 0; i < flat.Length; i += 2)
            dict.Add(flat[i], flat[i + 1]);
    }

    private void Push(object? value) => stack.Add(value);

    private object? Peek()
    {
        int bottom = marks.Count > 0 ? marks.Peek() : 0;
        if (stack.Count <= bottom)
            throw new InvalidDataException("the stack is empty.");
        return stack[^1];
    }

    private T PeekAs<T>(string need) where T : class => Peek() as T ?? throw new InvalidDataException($"{need}, not a {Describe(Peek())}.");

    private object? Pop()
    {
        var top = Peek();
        stack.RemoveAt(stack.Count - 1);
        return top;
    }

    private object?[] PopItems(int count)
    {
        int bottom = marks.Count > 0 ? marks.Peek() : 0;
        if (stack.Count - bottom < count)
            throw new InvalidDataException($"needs {count} items but the stack has {stack.Count - bottom}.");
        var items = stack.GetRange(stack.Count - count, count).ToArray();
        stack.RemoveRange(stack.Count - count, count);
        return items;
    }

    private object?[] PopMark()
    {
        if (marks.Count == 0)
            throw new InvalidDataException("there is no MARK to pop to.");
        int start = marks.Pop();
        var items = stack.GetRange(start, stack.Count - start).ToArray();
        stack.RemoveRange(start, stack.Count - start);
        return items;
    }

    private object? Recall(long index) =>
        memo.TryGetValue(index, out var value) ? value : throw new InvalidDataException($"memo entry {index} was never stored.");

    private byte ReadByte() => Take(1)[0];

    private ReadOnlySpan<byte> Take(ulong count)
    {
        if (count > (ulong)(data.Length - position))
            throw new InvalidDataException($"pickle byte {position}: needs {count} more bytes but only {data.Length - position} remain (truncated).");
        var span = data.AsSpan(position, (int)count);
        position += (int)count;
        return span;
    }

    private ReadOnlySpan<byte> Take(long count) =>
        count < 0 ? throw new InvalidDataException($"a length is negative ({count}).") : Take((ulong)count);

    private string ReadUtf8(ulong count) => new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Take(count));

    private string ReadLine()
    {
        int end = Array.IndexOf(data, (byte)'\n', position);
        if (end < 0)
            throw new InvalidDataException($"pickle byte {position}: a text argument has no end of line (truncated).");
        string line = Encoding.UTF8.GetString(data, position, end - position);
        position = end + 1;
        return line;
    }

    private static long ReadLittleEndianInteger(ReadOnlySpan<byte> bytes)
    {
        // Python longs of any size are legal pickle, but nothing in a checkpoint needs more than 64 bits.
        if (bytes.Length > 8)
            throw new InvalidDataException($"an integer of {bytes.Length} bytes is larger than 64 bits.");
        return (long)new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
    }

    private long ReadLittleEndianInteger(int count) =>
        count is < 0 or > 8 ? throw new InvalidDataException($"an integer of {count} bytes is larger than 64 bits.") : ReadLittleEndianInteger(Take(count));

    private static object ParseIntLine(string line) => line switch
    {
        "00" => false,
        "01" => true,
        _ => long.Parse(line, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture),
    };

    private static long ParseMemoIndex(string line) => long.Parse(line, NumberStyles.None, CultureInfo.InvariantCulture);

    private static string Name(byte opcode) =>
        opcode is >= 0x20 and < 0x7f ? $"'{(char)opcode}'" : $"0x{opcode:x2}";

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "...";
}
