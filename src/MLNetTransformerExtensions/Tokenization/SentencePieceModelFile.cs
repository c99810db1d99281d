using System.Text;
using Microsoft.ML.Tokenizers;

namespace MLNetTransformerExtensions.Tokenization;

/// <summary>
/// The parts of a SentencePiece <c>spiece.model</c> (a <c>ModelProto</c> protobuf message) that a unigram tokenizer
/// needs: the pieces with their scores, the special ids, and the normalizer settings with the precompiled charsmap.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers 3.0's <c>SentencePieceTokenizer.Create(Stream, ...)</c> reads this file itself, but throws
/// <see cref="IndexOutOfRangeException"/> on a unigram model without a beginning-of-sentence piece (<c>bos_id = -1</c>),
/// which is how every T5 <c>spiece.model</c> is trained. Its in-memory factory takes the same contents and works, so
/// this reader only decodes the message and hands it over; the tokenization is the library's.
/// </remarks>
internal sealed record SentencePieceModelFile(
    IReadOnlyList<(string Piece, float Score)> Pieces,
    int UnknownId,
    int ModelType,
    bool ByteFallback,
    byte[] PrecompiledCharsMap,
    bool AddDummyPrefix,
    bool EscapeWhitespaces)
{
    /// <summary>sentencepiece_model.proto's <c>TrainerSpec.ModelType.UNIGRAM</c>.</summary>
    public const int Unigram = 1;

    /// <summary>Decodes a <c>ModelProto</c>.</summary>
    /// <param name="bytes">The file's contents.</param>
    /// <param name="source">The file, for error messages.</param>
    /// <exception cref="InvalidDataException">The bytes are not a SentencePiece model.</exception>
    public static SentencePieceModelFile Read(byte[] bytes, string source)
    {
        var pieces = new List<(string, float)>();
        int unknownId = 0, modelType = Unigram;
        var byteFallback = false;
        byte[] charsMap = [];
        bool dummyPrefix = true, escapeWhitespaces = true; // the proto's defaults
        try
        {
            foreach (var field in Fields(bytes, 0, bytes.Length))
            {
                switch (field.Number)
                {
                    case 1 when field.IsBytes: // repeated SentencePiece pieces = 1: { piece = 1; score = 2; type = 3 }
                        var piece = string.Empty;
                        var score = 0f;
                        foreach (var p in Fields(bytes, field.Start, field.Start + field.Length))
                        {
                            if (p.Number == 1 && p.IsBytes)
                            {
                                piece = Encoding.UTF8.GetString(bytes, p.Start, p.Length);
                            }
                            else if (p.Number == 2)
                            {
                                score = BitConverter.Int32BitsToSingle((int)p.Value);
                            }
                        }

                        pieces.Add((piece, score));
                        break;
                    case 2 when field.IsBytes: // TrainerSpec: model_type = 3, byte_fallback = 35, unk_id = 40
                        foreach (var t in Fields(bytes, field.Start, field.Start + field.Length))
                        {
                            switch (t.Number)
                            {
                                case 3: modelType = (int)t.Value; break;
                                case 35: byteFallback = t.Value != 0; break;
                                case 40: unknownId = (int)(long)t.Value; break;
                            }
                        }

                        break;
                    case 3 when field.IsBytes: // NormalizerSpec: precompiled_charsmap = 2, add_dummy_prefix = 3, escape_whitespaces = 5
                        foreach (var n in Fields(bytes, field.Start, field.Start + field.Length))
                        {
                            switch (n.Number)
                            {
                                case 2 when n.IsBytes: charsMap = bytes.AsSpan(n.Start, n.Length).ToArray(); break;
                                case 3: dummyPrefix = n.Value != 0; break;
                                case 5: escapeWhitespaces = n.Value != 0; break;
                            }
                        }

                        break;
                }
            }
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException or ArgumentException)
        {
            throw new InvalidDataException($"'{source}' is not a SentencePiece model (a truncated or foreign protobuf message).", e);
        }

        if (pieces.Count == 0 || unknownId < 0 || unknownId >= pieces.Count)
        {
            throw new InvalidDataException($"'{source}' is not a usable SentencePiece model: {pieces.Count} pieces, unk_id {unknownId}.");
        }

        return new SentencePieceModelFile(pieces, unknownId, modelType, byteFallback, charsMap, dummyPrefix, escapeWhitespaces);
    }

    /// <summary>The library's unigram tokenizer over these pieces, adding no special tokens of its own.</summary>
    /// <param name="source">The file, for error messages.</param>
    /// <exception cref="NotSupportedException">The model is not a unigram model (T5's are).</exception>
    public SentencePieceTokenizer CreateTokenizer(string source)
    {
        if (ModelType != Unigram)
        {
            throw new NotSupportedException($"'{source}' is a SentencePiece model of type {ModelType}; only unigram models (type 1, as T5's) are supported.");
        }

        return SentencePieceTokenizer.Create(Pieces, UnknownId, addBeginningOfSentence: false, addEndOfSentence: false,
            PrecompiledCharsMap, AddDummyPrefix, EscapeWhitespaces, treatWhitespaceAsSuffix: false, ByteFallback, specialTokens: null);
    }

    private readonly record struct Field(int Number, bool IsBytes, ulong Value, int Start, int Length);

    private static List<Field> Fields(byte[] bytes, int start, int end)
    {
        var fields = new List<Field>();
        var i = start;
        while (i < end)
        {
            var key = Varint(bytes, ref i);
            var (number, wire) = ((int)(key >> 3), (int)(key & 7));
            switch (wire)
            {
                case 0:
                    fields.Add(new Field(number, false, Varint(bytes, ref i), 0, 0));
                    break;
                case 1:
                    fields.Add(new Field(number, false, BitConverter.ToUInt64(bytes, i), 0, 0));
                    i += 8;
                    break;
                case 5:
                    fields.Add(new Field(number, false, BitConverter.ToUInt32(bytes, i), 0, 0));
                    i += 4;
                    break;
                case 2:
                    var length = checked((int)Varint(bytes, ref i));
                    if (length < 0 || i + length > end)
                    {
                        throw new ArgumentException("A length-delimited field runs past its message.");
                    }

                    fields.Add(new Field(number, true, 0, i, length));
                    i += length;
                    break;
                default:
                    throw new ArgumentException($"Unsupported protobuf wire type {wire}.");
            }
        }

        return fields;
    }

    private static ulong Varint(byte[] bytes, ref int i)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = bytes[i++];
            value |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        throw new ArgumentException("A varint is longer than 10 bytes.");
    }
}
