// Mirrors HuggingFace transformers' models/bart/modeling_bart.py (v4.31): BartModel's encoder and decoder, and the
// sequence-classification and conditional-generation heads.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Modeling;

/// <summary>
/// Learned positions whose table has two extra rows: position p reads row p + 2 (fairseq kept the first rows for
/// padding), as BartLearnedPositionalEmbedding. Positions count from 0 whatever the padding (BART pads on the right).
/// </summary>
internal sealed class BartLearnedPositionalEmbedding : nn.Module<long, Tensor>
{
    /// <summary>The offset of position 0 in the table.</summary>
    public const int Offset = 2;

    private readonly Parameter weight;

    /// <summary>Creates the table, (max_position_embeddings + 2, d_model).</summary>
    /// <param name="positions">max_position_embeddings.</param>
    /// <param name="width">d_model.</param>
    public BartLearnedPositionalEmbedding(int positions, int width) : base(nameof(BartLearnedPositionalEmbedding))
    {
        weight = new Parameter(empty(positions + Offset, width));
        RegisterComponents();
    }

    /// <summary>The position embeddings of a sequence.</summary>
    /// <param name="length">The sequence length T.</param>
    /// <returns>(T, d_model), broadcast over the batch.</returns>
    public override Tensor forward(long length) =>
        weight.index_select(0, arange(Offset, length + Offset, dtype: ScalarType.Int64, device: weight.device));
}

/// <summary>
/// Multi-head attention with biased q/k/v/out projections; q is scaled by head_dim^-0.5 (the fused kernel's default),
/// as BartAttention. Self-attention when keys and values come from the same states; cross-attention otherwise.
/// </summary>
internal sealed class BartAttention : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear q_proj;
    private readonly Linear out_proj;
    private readonly int heads;
    private readonly int headDim;
    private readonly double dropout;
    private readonly bool causal;

    /// <summary>Creates the projections.</summary>
    /// <param name="width">d_model.</param>
    /// <param name="heads">The number of heads (encoder and decoder may differ).</param>
    /// <param name="dropout">attention_dropout.</param>
    /// <param name="causal">Whether a query may only see keys up to its own position (decoder self-attention).</param>
    public BartAttention(int width, int heads, double dropout, bool causal) : base(nameof(BartAttention))
    {
        this.heads = heads;
        headDim = width / heads;
        this.dropout = dropout;
        this.causal = causal;
        k_proj = nn.Linear(width, width);
        v_proj = nn.Linear(width, width);
        q_proj = nn.Linear(width, width);
        out_proj = nn.Linear(width, width);
        RegisterComponents();
    }

    /// <summary>Attends from <paramref name="hidden"/> to <paramref name="keyValue"/>.</summary>
    /// <param name="hidden">Queries' states (B, T, H).</param>
    /// <param name="keyValue">Keys' and values' states (B, S, H): the same tensor for self-attention.</param>
    /// <param name="mask">Additive padding mask (B, 1, 1, S), or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor keyValue, Tensor? mask)
    {
        var (batch, length, width) = (hidden.shape[0], hidden.shape[1], hidden.shape[2]);
        // (B, T, H) -> (B, nh, T, hs)
        Tensor Split(Tensor x) => x.view(batch, -1, heads, headDim).transpose(1, 2);
        var context = Layers.Attend(Split(q_proj.call(hidden)), Split(k_proj.call(keyValue)), Split(v_proj.call(keyValue)),
            mask, training ? dropout : 0.0, causal);
        // (B, nh, T, hs) -> (B, T, H)
        return out_proj.call(context.transpose(1, 2).reshape(batch, length, width));
    }
}

/// <summary>Post-LN self-attention then feed-forward, as BartEncoderLayer (fc1/fc2 are the layer's own keys).</summary>
internal sealed class BartEncoderLayer : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly BartAttention self_attn;
    private readonly LayerNorm self_attn_layer_norm;
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly LayerNorm final_layer_norm;
    private readonly Dropout dropout;
    private readonly Dropout activation_dropout;
    private readonly Activation activation;

    public BartEncoderLayer(TransformerConfig config) : base(nameof(BartEncoderLayer))
    {
        self_attn = new BartAttention(config.HiddenSize, config.NumHeads, config.AttentionDropout, causal: false);
        self_attn_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        fc1 = nn.Linear(config.HiddenSize, config.IntermediateSize);
        fc2 = nn.Linear(config.IntermediateSize, config.HiddenSize);
        final_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        activation_dropout = nn.Dropout(config.ActivationDropout);
        activation = config.HiddenAct;
        RegisterComponents();
    }

    /// <summary>Norm(x + attn(x)), then Norm(· + ffn(·)).</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="mask">Additive padding mask (B, 1, 1, T), or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        hidden = self_attn_layer_norm.call(hidden + dropout.call(self_attn.call(hidden, hidden, mask)));
        var inner = activation_dropout.call(Layers.Activate(fc1.call(hidden), activation));
        return final_layer_norm.call(hidden + dropout.call(fc2.call(inner)));
    }
}

/// <summary>Post-LN causal self-attention, cross-attention to the encoder, then feed-forward, as BartDecoderLayer.</summary>
internal sealed class BartDecoderLayer : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly BartAttention self_attn;
    private readonly LayerNorm self_attn_layer_norm;
    private readonly BartAttention encoder_attn;
    private readonly LayerNorm encoder_attn_layer_norm;
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly LayerNorm final_layer_norm;
    private readonly Dropout dropout;
    private readonly Dropout activation_dropout;
    private readonly Activation activation;

    public BartDecoderLayer(TransformerConfig config) : base(nameof(BartDecoderLayer))
    {
        self_attn = new BartAttention(config.HiddenSize, config.DecoderHeads, config.AttentionDropout, causal: true);
        self_attn_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        encoder_attn = new BartAttention(config.HiddenSize, config.DecoderHeads, config.AttentionDropout, causal: false);
        encoder_attn_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        fc1 = nn.Linear(config.HiddenSize, config.DecoderIntermediateSize);
        fc2 = nn.Linear(config.DecoderIntermediateSize, config.HiddenSize);
        final_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        activation_dropout = nn.Dropout(config.ActivationDropout);
        activation = config.HiddenAct;
        RegisterComponents();
    }

    /// <summary>Norm(x + self_attn(x)), Norm(· + encoder_attn(·, encoder)), Norm(· + ffn(·)).</summary>
    /// <param name="hidden">Decoder states (B, U, H).</param>
    /// <param name="encoderHidden">Encoder output (B, T, H).</param>
    /// <param name="encoderMask">Additive mask of padded encoder positions (B, 1, 1, T), or null.</param>
    /// <returns>(B, U, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor encoderHidden, Tensor? encoderMask)
    {
        // HuggingFace builds no padding mask for the decoder's own inputs: causal attention alone (right padding only
        // follows the real tokens, so no real query sees it).
        hidden = self_attn_layer_norm.call(hidden + dropout.call(self_attn.call(hidden, hidden, null)));
        hidden = encoder_attn_layer_norm.call(hidden + dropout.call(encoder_attn.call(hidden, encoderHidden, encoderMask)));
        var inner = activation_dropout.call(Layers.Activate(fc1.call(hidden), activation));
        return final_layer_norm.call(hidden + dropout.call(fc2.call(inner)));
    }
}

/// <summary>
/// Token embeddings (the shared table, scaled by √d_model iff <c>scale_embedding</c>) plus offset positions, then
/// <c>layernorm_embedding</c> and dropout: the input of both BartEncoder and BartDecoder.
/// </summary>
internal sealed class BartEmbedder
{
    private readonly Embedding _shared;
    private readonly double _scale;

    public BartEmbedder(Embedding shared, TransformerConfig config)
    {
        _shared = shared;
        _scale = config.ScaleEmbedding ? Math.Sqrt(config.HiddenSize) : 1.0;
    }

    public Tensor Embed(Tensor ids, BartLearnedPositionalEmbedding positions, LayerNorm norm, Dropout dropout)
    {
        var tokens = _shared.call(ids);
        if (_scale != 1.0)
        {
            tokens = tokens * _scale;
        }

        return dropout.call(norm.call(tokens + positions.call(ids.shape[1])));
    }
}

/// <summary>The encoder stack, as BartEncoder (its <c>embed_tokens</c> is the shared table, not stored again).</summary>
internal sealed class BartEncoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly BartLearnedPositionalEmbedding embed_positions;
    private readonly ModuleList<BartEncoderLayer> layers;
    private readonly LayerNorm layernorm_embedding;
    private readonly Dropout dropout;
    private readonly BartEmbedder embedder;

    public BartEncoder(TransformerConfig config, Embedding shared) : base(nameof(BartEncoder))
    {
        embed_positions = new BartLearnedPositionalEmbedding(config.MaxPositions, config.HiddenSize);
        layers = nn.ModuleList([.. Enumerable.Range(0, config.NumLayers).Select(_ => new BartEncoderLayer(config))]);
        layernorm_embedding = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
        embedder = new BartEmbedder(shared, config);
    }

    /// <summary>The encoder's last hidden state.</summary>
    /// <param name="inputIds">(B, T).</param>
    /// <param name="attentionMask">(B, T), 1 for real tokens; right padding.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        var hidden = embedder.Embed(inputIds, embed_positions, layernorm_embedding, dropout);
        var mask = Layers.EncoderAttentionMask(attentionMask, hidden.dtype);
        foreach (var layer in layers)
        {
            hidden = layer.call(hidden, mask);
        }

        return hidden;
    }
}

/// <summary>The decoder stack, as BartDecoder (its <c>embed_tokens</c> is the shared table).</summary>
internal sealed class BartDecoder : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly BartLearnedPositionalEmbedding embed_positions;
    private readonly ModuleList<BartDecoderLayer> layers;
    private readonly LayerNorm layernorm_embedding;
    private readonly Dropout dropout;
    private readonly BartEmbedder embedder;

    public BartDecoder(TransformerConfig config, Embedding shared) : base(nameof(BartDecoder))
    {
        embed_positions = new BartLearnedPositionalEmbedding(config.MaxPositions, config.HiddenSize);
        layers = nn.ModuleList([.. Enumerable.Range(0, config.DecoderLayers).Select(_ => new BartDecoderLayer(config))]);
        layernorm_embedding = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
        embedder = new BartEmbedder(shared, config);
    }

    /// <summary>The decoder's last hidden state.</summary>
    /// <param name="decoderInputIds">(B, U).</param>
    /// <param name="encoderHidden">(B, T, H).</param>
    /// <param name="attentionMask">The encoder inputs' mask (B, T).</param>
    /// <returns>(B, U, H).</returns>
    public override Tensor forward(Tensor decoderInputIds, Tensor encoderHidden, Tensor attentionMask)
    {
        var hidden = embedder.Embed(decoderInputIds, embed_positions, layernorm_embedding, dropout);
        var encoderMask = Layers.EncoderAttentionMask(attentionMask, hidden.dtype);
        foreach (var layer in layers)
        {
            hidden = layer.call(hidden, encoderHidden, encoderMask);
        }

        return hidden;
    }
}

/// <summary>The shared token table, the encoder and the decoder, as BartModel.</summary>
internal sealed class BartModel : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly Embedding shared;
    private readonly BartEncoder encoder;
    private readonly BartDecoder decoder;

    public BartModel(TransformerConfig config) : base(nameof(BartModel))
    {
        shared = nn.Embedding(config.VocabSize, config.HiddenSize, padding_idx: config.PadTokenId);
        encoder = new BartEncoder(config, shared);
        decoder = new BartDecoder(config, shared);
        RegisterComponents();
    }

    /// <summary>The shared token table (vocab, H), which the LM head reuses.</summary>
    public Parameter SharedWeight => shared.weight!;

    public Tensor Encode(Tensor inputIds, Tensor attentionMask) => encoder.call(inputIds, attentionMask);

    public Tensor Decode(Tensor decoderInputIds, Tensor encoderHidden, Tensor attentionMask) =>
        decoder.call(decoderInputIds, encoderHidden, attentionMask);

    /// <summary>The decoder's last hidden state for decoder inputs given explicitly.</summary>
    /// <param name="inputIds">(B, T).</param>
    /// <param name="attentionMask">(B, T).</param>
    /// <param name="decoderInputIds">(B, U).</param>
    /// <returns>(B, U, H).</returns>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor decoderInputIds) =>
        decoder.call(decoderInputIds, encoder.call(inputIds, attentionMask), attentionMask);

    /// <summary>HuggingFace's <c>_init_weights</c> for BART: normal(0, init_std) linears and embeddings, zero biases and padding rows, unit LayerNorms.</summary>
    public static void InitializeWeights(nn.Module root, TransformerConfig config)
    {
        Layers.InitializeWeights(root, config);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (name, parameter) in root.named_parameters())
        {
            if (name.EndsWith("embed_positions.weight", StringComparison.Ordinal))
            {
                nn.init.normal_(parameter, 0, config.InitializerRange);
            }
            else if (name.EndsWith("shared.weight", StringComparison.Ordinal) && config.PadTokenId is int pad)
            {
                parameter[pad].zero_();
            }
        }
    }
}

/// <summary>Decoder state at the last &lt;/s&gt; → dropout → dense → tanh → dropout → out_proj, as BartClassificationHead.</summary>
internal sealed class BartClassificationHead : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly Dropout dropout;
    private readonly Linear out_proj;

    public BartClassificationHead(TransformerConfig config) : base(nameof(BartClassificationHead))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        dropout = nn.Dropout(config.ClassifierDropout);
        out_proj = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <summary>Logits from the pooled states.</summary>
    /// <param name="pooled">(B, H).</param>
    /// <returns>(B, num_labels).</returns>
    public override Tensor forward(Tensor pooled) => out_proj.call(dropout.call(dense.call(dropout.call(pooled)).tanh()));
}

/// <summary>
/// BartModel plus its classification head, as BartForSequenceClassification: the decoder reads the input shifted
/// right behind <c>decoder_start_token_id</c>, and the head reads the decoder's state at the row's <b>last</b>
/// end-of-sequence token (a pair <c>&lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;</c> has three).
/// </summary>
internal sealed class BartForSequenceClassification : SequenceClassificationModel
{
    private readonly BartModel model;
    private readonly BartClassificationHead classification_head;

    public BartForSequenceClassification(TransformerConfig config) : base(nameof(BartForSequenceClassification), config)
    {
        model = new BartModel(config);
        classification_head = new BartClassificationHead(config);
        RegisterComponents();
        BartModel.InitializeWeights(this, config);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadPrefixes => ["classification_head."];

    /// <inheritdoc/>
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
        [("model.encoder.embed_tokens.weight", "model.shared.weight"), ("model.decoder.embed_tokens.weight", "model.shared.weight")];

    /// <summary>The decoder's last hidden state (BartModel's <c>last_hidden_state</c>) with the input shifted right as decoder input.</summary>
    /// <inheritdoc/>
    public override Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) =>
        model.call(inputIds, attentionMask, Layers.ShiftRight(inputIds, Config.DecoderStartTokenId ?? 2));

    /// <inheritdoc/>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        var hidden = HiddenStates(inputIds, attentionMask, null);
        // The last eos of each row: the largest column holding eos_token_id. HuggingFace requires every row of a batch to
        // have as many eos; taking each row's own last one gives the same states and lets such rows share a batch.
        var eos = inputIds.eq(Config.EosTokenId ?? 2).to(ScalarType.Int64);
        var last = eos.mul(arange(inputIds.shape[1], dtype: ScalarType.Int64, device: inputIds.device)).argmax(1);
        var pooled = hidden[arange(hidden.shape[0], dtype: ScalarType.Int64, device: hidden.device), last]; // (B, H)
        return classification_head.call(pooled);
    }
}

/// <summary>BartModel plus the tied LM head and its <c>final_logits_bias</c> buffer, as BartForConditionalGeneration.</summary>
internal sealed class BartForConditionalGeneration : ConditionalGenerationModel
{
    private readonly BartModel model;
    private readonly Tensor final_logits_bias;
    private readonly Parameter sharedWeight;

    public BartForConditionalGeneration(TransformerConfig config) : base(nameof(BartForConditionalGeneration), config)
    {
        model = new BartModel(config);
        final_logits_bias = zeros(1, config.VocabSize); // a buffer: HuggingFace stores it but never trains it
        RegisterComponents();
        BartModel.InitializeWeights(this, config);
        sharedWeight = model.SharedWeight;
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadPrefixes => ["final_logits_bias"];

    /// <inheritdoc/>
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
    [
        ("model.encoder.embed_tokens.weight", "model.shared.weight"),
        ("model.decoder.embed_tokens.weight", "model.shared.weight"),
        ("lm_head.weight", "model.shared.weight"),
    ];

    /// <inheritdoc/>
    public override Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) => model.Encode(inputIds, attentionMask);

    /// <inheritdoc/>
    public override Tensor DecoderHiddenStates(Tensor decoderInputIds, Tensor encoderHidden, Tensor attentionMask) =>
        model.Decode(decoderInputIds, encoderHidden, attentionMask);

    /// <summary>decoder state · shared^T + final_logits_bias (no rescaling).</summary>
    /// <inheritdoc/>
    public override Tensor PredictTokens(Tensor hidden) => nn.functional.linear(hidden, sharedWeight) + final_logits_bias[0];

    /// <summary>Releases this handle on the shared table (the embedding keeps its own).</summary>
    /// <param name="disposing">Whether managed resources are released.</param>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            sharedWeight.Dispose();
        }

        base.Dispose(disposing);
    }
}
