package gormcrypt

import (
	"reflect"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/kmstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm/schema"
)

// tenFields has more encrypted fields than a statement remembers.
type tenFields struct {
	ID                             uint `gorm:"primaryKey"`
	F0, F1, F2, F3, F4, F5, F6, F7 string
	F8                             string `gorm:"serializer:keyward"`
	F9                             string `gorm:"serializer:keyward"`
	FA                             string `gorm:"serializer:keyward"`
	FB                             string `gorm:"serializer:keyward"`
	FC                             string `gorm:"serializer:keyward"`
	FD                             string `gorm:"serializer:keyward"`
	FE                             string `gorm:"serializer:keyward"`
	FF                             string `gorm:"serializer:keyward"`
	FG                             string `gorm:"serializer:keyward"`
	FH                             string `gorm:"serializer:keyward"`
}

// TestStateFieldInfo checks that the statement's memo of recent fields
// answers as the Crypt's lookup does, when fields outnumber the memo and
// for a field that is not encrypted.
func TestStateFieldInfo(t *testing.T) {
	schema.RegisterSerializer(SerializerName, serializer{})
	s, err := schema.Parse(&tenFields{}, &sync.Map{}, schema.NamingStrategy{})
	require.NoError(t, err)
	c, err := New(kmstest.MemoryKeyring(t))
	require.NoError(t, err)
	st := &state{c: c}
	names := []string{"F8", "F9", "FA", "FB", "FC", "FD", "FE", "FF", "FG", "FH"}
	for round := range 3 {
		for _, name := range names {
			f := s.LookUpField(name)
			want, err := c.fieldInfo(f)
			require.NoError(t, err)
			got, err := st.fieldInfo(f)
			require.NoError(t, err)
			assert.Samef(t, want, got, "round %d: state.fieldInfo(%s)", round, name)
		}
	}
	r := st.recent.Load()
	require.NotNil(t, r)
	assert.Equal(t, recentMax, r.n, "the memo is bounded")
	assert.Same(t, s.LookUpField("FH"), r.f[0], "the newest field first")

	_, err = st.fieldInfo(s.LookUpField("F0"))
	assert.ErrorIs(t, err, ErrTag, "state.fieldInfo of a field without serializer:keyward")
}

// uuidRow has two encrypted fields bound to a client-assigned key.
type uuidRow struct {
	ID [16]byte `gorm:"primaryKey"`
	A  string   `gorm:"serializer:keyward"`
	B  string   `gorm:"serializer:keyward"`
}

// TestPKMemo checks that the statement's memo of the last row's key gives
// every field the associated data of its own row: the same bytes as
// without the memo, across rows, for rows that cannot be addressed, and
// for a row without a key.
func TestPKMemo(t *testing.T) {
	schema.RegisterSerializer(SerializerName, serializer{})
	s, err := schema.Parse(&uuidRow{}, &sync.Map{}, schema.NamingStrategy{})
	require.NoError(t, err)
	c, err := New(kmstest.MemoryKeyring(t))
	require.NoError(t, err)
	fa, err := c.fieldInfo(s.LookUpField("A"))
	require.NoError(t, err)
	fb, err := c.fieldInfo(s.LookUpField("B"))
	require.NoError(t, err)
	ctx := t.Context()
	rows := []uuidRow{{ID: [16]byte{1}}, {ID: [16]byte{2}}, {ID: [16]byte{1}}}
	var memo pkMemo
	for i := range rows {
		for _, fi := range []*fieldInfo{fa, fb, fa} {
			for _, dst := range []reflect.Value{reflect.ValueOf(&rows[i]).Elem(), reflect.ValueOf(rows[i])} {
				want, err := fi.appendAAD(ctx, nil, dst, reflect.Value{})
				require.NoError(t, err)
				got, err := fi.appendAADMemo(ctx, nil, dst, reflect.Value{}, &memo)
				require.NoError(t, err)
				assert.Equalf(t, want, got, "row %d, field %s", i, fi.column)
			}
		}
	}
	a0, _ := fa.appendAADMemo(ctx, nil, reflect.ValueOf(&rows[0]).Elem(), reflect.Value{}, &memo)
	a1, _ := fa.appendAADMemo(ctx, nil, reflect.ValueOf(&rows[1]).Elem(), reflect.Value{}, &memo)
	assert.NotEqual(t, a0, a1, "rows with other keys get other associated data")

	var zero uuidRow
	_, err = fa.appendAADMemo(ctx, nil, reflect.ValueOf(&zero).Elem(), reflect.Value{}, &memo)
	assert.ErrorIs(t, err, ErrPrimaryKey, "a row without its key is refused, memo or not")
}
