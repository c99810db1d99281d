using System.Buffers.Binary;
using System.Text;

namespace MLNetTransformerExtensions.Tests.Checkpoints;

/// <summary>Writes pickle opcodes by hand, as torch.save (protocol 2) would, for tests that cannot run Python.</summary>
internal sealed class PickleWriter
{
    private readonly MemoryStream bytes = new();

    public PickleWriter Proto(byte version = 2) => Op(0x80).Byte(version);

    public PickleWriter Global(string module, string name) => Op('c').Raw(Encoding.UTF8.GetBytes($"{module}\n{name}\n"));

    public PickleWriter StackGlobal(string module, string name) => Str(module).Str(name).Op(0x93);

    public PickleWriter Str(string value)
    {
        var utf8 = Encoding.UTF8.GetBytes(value);
        Op('X');
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)utf8.Length);
        return Raw(length.ToArray()).Raw(utf8);
    }

    public PickleWriter Int(long value)
    {
        if (value is >= 0 and < 256)
            return Op('K').Byte((byte)value);
        if (value is >= int.MinValue and <= int.MaxValue)
        {
            var buffer = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(buffer, (int)value);
            return Op('J').Raw(buffer);
        }

        var wide = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(wide, value);
        return Op(0x8a).Byte(8).Raw(wide); // LONG1
    }

    public PickleWriter IntTuple(IEnumerable<long> values)
    {
        Mark();
        foreach (long value in values)
            Int(value);
        return Tuple();
    }

    public PickleWriter Mark() => Op('(');

    public PickleWriter Tuple() => Op('t');

    public PickleWriter EmptyTuple() => Op(')');

    public PickleWriter EmptyDict() => Op('}');

    public PickleWriter EmptyList() => Op(']');

    public PickleWriter Reduce() => Op('R');

    public PickleWriter BinPersId() => Op('Q');

    public PickleWriter False() => Op(0x89);

    public PickleWriter None() => Op('N');

    public PickleWriter SetItems() => Op('u');

    public PickleWriter Build() => Op('b');

    public PickleWriter Put(byte index) => Op('q').Byte(index);

    public PickleWriter Get(byte index) => Op('h').Byte(index);

    public PickleWriter Stop() => Op('.');

    public PickleWriter Op(char opcode) => Byte((byte)opcode);

    public PickleWriter Op(byte opcode) => Byte(opcode);

    public PickleWriter Byte(byte value)
    {
        bytes.WriteByte(value);
        return this;
    }

    public PickleWriter Raw(byte[] data)
    {
        bytes.Write(data);
        return this;
    }

    public byte[] ToArray() => bytes.ToArray();
}
