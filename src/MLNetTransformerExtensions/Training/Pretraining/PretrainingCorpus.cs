using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using MLNetTransformerExtensions.Tokenization;

namespace MLNetTransformerExtensions.Training.Pretraining;

/// <summary>
/// Text files read as a stream of packed, fixed-length token sequences: lines are tokenized a chunk at a time and
/// their tokens concatenated, so only one chunk of lines and one sequence in the making are ever in memory.
/// </summary>
/// <remarks>
/// <para>Encoders: each sequence is <c>[CLS]</c>, the next <c>maxLength - 2</c> tokens of the stream, <c>[SEP]</c>
/// (RoBERTa: <c>&lt;s&gt;</c> … <c>&lt;/s&gt;</c>); lines run on from one sequence into the next, and a separator token
/// marks where one file (document) ends and the next begins. Decoders: the stream is each line with its newline, and
/// the end-of-text token after each file, cut into windows of <c>maxLength</c> tokens. Only the corpus's last
/// sequence can be shorter.</para>
/// <para>The sequences, and which of them are held out (every <c>holdOutEvery</c>-th), depend only on the files, the
/// tokenizer and the length, so any pass over the corpus sees the same ones: resuming re-reads rather than stores.</para>
/// </remarks>
internal sealed class PretrainingCorpus
{
    // Lines tokenized together (in parallel) before their tokens are packed.
    private const int ChunkLines = 1024;

    private readonly IReadOnlyList<string> _files;
    private readonly TransformerTokenizer _tokenizer;
    private readonly PretrainingKind _kind;
    private readonly int _maxLength;
    private readonly int _holdOutEvery;

    /// <param name="files">The text files, read in order.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="kind">Encoder (CLS … SEP sequences) or decoder (plain windows).</param>
    /// <param name="maxLength">Tokens per sequence, special tokens included.</param>
    /// <param name="holdOutEvery">Every this many sequences one is held out; 0 holds none out.</param>
    public PretrainingCorpus(IReadOnlyList<string> files, TransformerTokenizer tokenizer, PretrainingKind kind, int maxLength, int holdOutEvery)
    {
        _files = files;
        _tokenizer = tokenizer;
        _kind = kind;
        _maxLength = maxLength;
        _holdOutEvery = holdOutEvery;
        TotalBytes = files.Sum(f => new FileInfo(f).Length);
    }

    /// <summary>The size of all files.</summary>
    public long TotalBytes { get; }

    /// <summary>Whether the sequence at this position of the corpus is held out for validation.</summary>
    public bool IsHeldOut(long index) => _holdOutEvery > 0 && index % _holdOutEvery == _holdOutEvery - 1;

    /// <summary>The sequences trained on, in corpus order.</summary>
    public IEnumerable<int[]> TrainingSequences(IProgress<long>? bytesRead, CancellationToken cancellationToken)
    {
        long index = 0;
        foreach (var sequence in Sequences(bytesRead, cancellationToken))
        {
            if (!IsHeldOut(index++))
            {
                yield return sequence;
            }
        }
    }

    /// <summary>The held-out sequences, in corpus order.</summary>
    public IEnumerable<int[]> HeldOutSequences(IProgress<long>? bytesRead, CancellationToken cancellationToken)
    {
        long index = 0;
        foreach (var sequence in Sequences(bytesRead, cancellationToken))
        {
            if (IsHeldOut(index++))
            {
                yield return sequence;
            }
        }
    }

    /// <summary>
    /// One epoch's training sequences: corpus order passed through a shuffle buffer seeded by the epoch, so batches mix
    /// distant parts of the corpus while memory stays bounded by the buffer.
    /// </summary>
    public IEnumerable<int[]> Epoch(int epoch, int seed, int shuffleBuffer, IProgress<long>? bytesRead, CancellationToken cancellationToken) =>
        Shuffle(TrainingSequences(bytesRead, cancellationToken), shuffleBuffer, new Random(unchecked((int)RandomSeeds.Mix(seed, epoch))));

    /// <summary>Every packed sequence of the corpus, in order, held-out ones included.</summary>
    public IEnumerable<int[]> Sequences(IProgress<long>? bytesRead, CancellationToken cancellationToken)
    {
        var packer = _kind == PretrainingKind.Encoder
            ? (IPacker)new EncoderPacker(_tokenizer.ClsTokenId!.Value, _tokenizer.SepTokenId!.Value, _maxLength)
            : new DecoderPacker(_tokenizer.EosTokenId!.Value, _maxLength);
        var ready = new List<int[]>();
        var lines = new List<string>(ChunkLines);
        long bytesBefore = 0;
        foreach (var file in _files)
        {
            using (var reader = new StreamReader(file, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16))
            {
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    lines.Clear();
                    while (lines.Count < ChunkLines && reader.ReadLine() is { } line)
                    {
                        lines.Add(line);
                    }

                    if (lines.Count == 0)
                    {
                        break;
                    }

                    foreach (var tokens in Tokenize(lines))
                    {
                        packer.Add(tokens, ready);
                        foreach (var sequence in ready)
                        {
                            yield return sequence;
                        }

                        ready.Clear();
                    }

                    bytesRead?.Report(bytesBefore + reader.BaseStream.Position);
                }
            }

            bytesBefore += new FileInfo(file).Length;
            packer.EndDocument(ready);
            foreach (var sequence in ready)
            {
                yield return sequence;
            }

            ready.Clear();
        }

        packer.Finish(ready);
        foreach (var sequence in ready)
        {
            yield return sequence;
        }
    }

    /// <summary>The tokens of each line (decoders: with its newline), without special tokens; order kept.</summary>
    private int[][] Tokenize(List<string> lines)
    {
        var tokens = new int[lines.Count][];
        var decoder = _kind == PretrainingKind.Decoder;
        Parallel.For(0, lines.Count, i =>
        {
            var line = lines[i];
            tokens[i] = decoder ? [.. _tokenizer.EncodeWithoutSpecialTokens(line + "\n")]
                : string.IsNullOrWhiteSpace(line) ? []
                : [.. _tokenizer.EncodeWithoutSpecialTokens(line)];
        });
        return tokens;
    }

    /// <summary>A bounded-memory shuffle: each item leaves from a random slot of the buffer as the next one arrives.</summary>
    internal static IEnumerable<T> Shuffle<T>(IEnumerable<T> source, int capacity, Random random)
    {
        var buffer = new List<T>(Math.Min(capacity, 1024));
        foreach (var item in source)
        {
            if (buffer.Count < capacity)
            {
                buffer.Add(item);
                continue;
            }

            var slot = random.Next(capacity);
            yield return buffer[slot];
            buffer[slot] = item;
        }

        random.Shuffle(CollectionsMarshal.AsSpan(buffer));
        foreach (var item in buffer)
        {
            yield return item;
        }
    }

    /// <summary>SHA-256 and size of each file, which a resumed run must match.</summary>
    public static List<InputFile> Describe(IReadOnlyList<string> files, CancellationToken cancellationToken)
    {
        var described = new List<InputFile>(files.Count);
        foreach (var file in files)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var stream = File.OpenRead(file);
            var hash = Convert.ToHexStringLower(SHA256.HashData(stream));
            described.Add(new InputFile(Path.GetFullPath(file), stream.Length, hash));
        }

        return described;
    }

    private interface IPacker
    {
        void Add(int[] tokens, List<int[]> ready);

        void EndDocument(List<int[]> ready);

        void Finish(List<int[]> ready);
    }

    /// <summary>[CLS] + the next maxLength - 2 stream tokens + [SEP]; a separator between documents.</summary>
    private sealed class EncoderPacker(int cls, int sep, int maxLength) : IPacker
    {
        private readonly List<int> _content = new(maxLength);
        private readonly int _capacity = maxLength - 2;

        public void Add(int[] tokens, List<int[]> ready)
        {
            foreach (var token in tokens)
            {
                _content.Add(token);
                if (_content.Count == _capacity)
                {
                    ready.Add(Emit());
                }
            }
        }

        public void EndDocument(List<int[]> ready)
        {
            // A document that ended exactly at a sequence boundary is already separated by that sequence's [SEP].
            if (_content.Count > 0)
            {
                Add([sep], ready);
            }
        }

        public void Finish(List<int[]> ready)
        {
            if (_content.Count > 0 && _content[^1] == sep)
            {
                _content.RemoveAt(_content.Count - 1);
            }

            if (_content.Count > 0)
            {
                ready.Add(Emit());
            }
        }

        private int[] Emit()
        {
            var sequence = new int[_content.Count + 2];
            sequence[0] = cls;
            _content.CopyTo(sequence, 1);
            sequence[^1] = sep;
            _content.Clear();
            return sequence;
        }
    }

    /// <summary>Windows of maxLength stream tokens; the end-of-text token after each document.</summary>
    private sealed class DecoderPacker(int eos, int maxLength) : IPacker
    {
        private readonly List<int> _window = new(maxLength);

        public void Add(int[] tokens, List<int[]> ready)
        {
            foreach (var token in tokens)
            {
                _window.Add(token);
                if (_window.Count == maxLength)
                {
                    ready.Add([.. _window]);
                    _window.Clear();
                }
            }
        }

        public void EndDocument(List<int[]> ready) => Add([eos], ready);

        // A single token predicts nothing.
        public void Finish(List<int[]> ready)
        {
            if (_window.Count >= 2)
            {
                ready.Add([.. _window]);
            }

            _window.Clear();
        }
    }
}

/// <summary>An input file as a checkpoint records it.</summary>
/// <param name="Path">Full path when the run started.</param>
/// <param name="Bytes">Size.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the content.</param>
internal sealed record InputFile(string Path, long Bytes, string Sha256);

/// <summary>Seeds derived from the run's seed, so each step, epoch and validation batch has its own reproducible stream.</summary>
internal static class RandomSeeds
{
    /// <summary>SplitMix64 of the pair: well spread, non-negative, and the same on every machine.</summary>
    public static long Mix(long seed, long salt)
    {
        var z = unchecked(((ulong)seed * 0x9E3779B97F4A7C15UL) ^ (ulong)salt);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (long)((z ^ (z >> 31)) & long.MaxValue);
    }
}
